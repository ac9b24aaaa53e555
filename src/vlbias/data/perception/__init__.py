"""Package data of the social-perception audit: lexicons (word lists) and prompt templates."""
