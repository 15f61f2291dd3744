"""The managed-identity token endpoint (App Service protocol)."""
