"""Service clients: ARM, Key Vault and the Power Platform admin API; settings, credentials, SDK plumbing, retry."""
