"""Search of prompts in PostgreSQL, matching what SQLite's FTS5 index gives.

FTS5 (`unicode61`) splits a prompt into runs of letters and digits, folds case and
removes diacritics; a query `"word"*` matches a prompt with a word starting so. Here the
words are split and folded in Python, by the same rule as the user's query
(`interface.search_words`), and stored as the lexemes of a tsvector taken as they are
(`array_to_tsvector`: no parser, no dictionary, no stemming, the database's locale
plays no part); a search is a tsquery of prefix terms (`'word':*`) joined by `&`.
"""

from __future__ import annotations

import unicodedata

from .interface import search_words

# A tsvector lexeme is at most 2046 bytes; a prefix this long matches the same prompts.
MAX_LEXEME = 200


def fold(word: str) -> str:
    """A word as FTS5's unicode61 compares it: without diacritics, case folded."""
    decomposed = unicodedata.normalize("NFKD", word)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()


def words_of(text: str) -> list[str]:
    """Every word of a prompt (runs of letters and digits)."""
    return "".join(c if c.isalnum() else " " for c in text).split()


def lexemes(prompt: str) -> list[str]:
    """The distinct folded words of a prompt: what its `search` column holds."""
    folded = (fold(word)[:MAX_LEXEME] for word in words_of(prompt))
    return list(dict.fromkeys(w for w in folded if w))


def tsvector_text(prompt: str) -> str:
    """The prompt's lexemes as tsvector input text (for COPY): each quoted."""
    return " ".join("'" + w.replace("\\", "\\\\").replace("'", "''") + "'" for w in lexemes(prompt))


def tsquery(text: str) -> str | None:
    """The tsquery of a user's search (None: no word, no search)."""
    terms = []
    for word in search_words(text):
        folded = fold(word)[:MAX_LEXEME]
        if folded:
            terms.append("'" + folded.replace("\\", "\\\\").replace("'", "''") + "':*")
    return " & ".join(terms) or None
