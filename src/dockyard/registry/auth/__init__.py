"""Who may pull and push: htpasswd basic auth and Docker's bearer tokens."""
