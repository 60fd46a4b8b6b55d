"""Who is who: wallet sign-in (a signed single-use nonce), the per-request wallet signature, who is
signed in to the pages (the Django session), and who is calling the API (`api_auth.authenticate`,
named by settings.API_AUTHENTICATOR). The rows it reads and writes stay with their apps
(payments.models' challenges and sessions, agents.models' API keys), so their migrations do not move.
"""
