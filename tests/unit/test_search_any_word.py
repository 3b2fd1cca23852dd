"""When a keyword query may fall back to any of its words, and what it then asks."""

import pytest

from shared.search.port import any_word_text


@pytest.mark.parametrize(
    ("text", "fallback"),
    [
        ("bedroom with fairy lights", "bedroom or with or fairy or lights"),
        ("  red   t-shirt ", "red or t-shirt"),  # a hyphen inside a word is no exclusion
        ("sunset", None),  # one word: nothing to loosen
        ('"fairy lights" bedroom', None),  # a phrase is what the buyer wants
        ("boat -red", None),  # so is an exclusion
        ("cat OR dog", None),  # and an explicit OR
        ("", None),
        (None, None),
    ],
)
def test_only_a_plain_query_of_several_words_falls_back_to_any_of_them(text, fallback):
    assert any_word_text(text) == fallback
