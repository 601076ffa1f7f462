"""Cross-cutting foundations: settings, storage, tenancy and access, errors, i18n."""
