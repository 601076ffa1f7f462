"""The engagement: the consulting contract as a system (see issue 7).

This package holds the pure parts: the Chinese working-day calendar and the deadlines
computed on it (:mod:`.calendar`), payment schedules and payments (:mod:`.instalments`), and
penalties and late-payment charges (:mod:`.penalties`). Their legal figures are dated data
files with sources: ``holidays_cn.yaml``, ``lpr.yaml`` and ``statutory.yaml``.
"""
