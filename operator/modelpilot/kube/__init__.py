"""The only code that talks to the Kubernetes API: manifests (pure builders), observe (read state), client (write)."""
