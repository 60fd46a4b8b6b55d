"""How much a person may type into an order (DESIGN.md section 2): one place for the models' columns,
the API's request specs and the pages' forms, so a page never refuses what the API takes."""

BRIEF_MIN = 10
BRIEF_MAX = 3000
NOTE_MAX = 2000  # a message, revision feedback, a dispute or cancel reason
PROMPT_MAX = 3000
REVIEW_COMMENT_MAX = 500
TX_HASH_MAX = 128
PAYER_SIGNATURE_MAX = 4000  # a smart account's ERC-6492 signature carries its factory calldata
