"""One Chinese sentiment model for the whole test run, cached in a temporary folder.

Training takes seconds; every test that scores text shares the model trained here
rather than the one under ``$MEMBERLAB_DATA_DIR``, so tests never read or write the
user's data folder.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from memberlab.experience.text.sentiment import ChineseSentimentModel, chinese_model


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("models")


@pytest.fixture(scope="session")
def zh_model(model_dir: Path) -> ChineseSentimentModel:
    return chinese_model(model_dir)
