"""kiln's management commands on a real AWS account (``--backend aws``): orphaned snapshots, and
lifecycle policies applied to the account's own AMIs."""
