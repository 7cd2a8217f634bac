"""Chunking: sizes, overlap, boundaries, coverage and validation."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from regions_cli.rag.base import RagError
from regions_cli.rag.chunking import chunk_spans, chunk_text, validate_chunking


def test_empty_and_blank_text_give_no_chunks() -> None:
    assert chunk_text("", 100, 10) == []
    assert chunk_text(" \n\t ", 100, 10) == []


def test_text_shorter_than_a_chunk_is_one_chunk() -> None:
    assert chunk_text("  A short note.  ", 100, 10) == ["A short note."]
    assert chunk_text("x" * 100, 100, 99) == ["x" * 100]


def test_overlap_zero_is_allowed_and_tiles_the_text() -> None:
    text = "abcdefghij" * 10  # no boundaries: exact windows
    spans = chunk_spans(text, 30, 0)
    assert spans == [(0, 30), (30, 60), (60, 90), (90, 100)]


def test_windows_overlap_by_the_requested_amount_without_boundaries() -> None:
    text = "x" * 300
    assert chunk_spans(text, 128, 48) == [(0, 128), (80, 208), (160, 288), (240, 300)]


def test_cuts_prefer_paragraphs_then_sentences_then_words() -> None:
    para = "First paragraph here.\n\nSecond paragraph is a bit longer than that."
    assert chunk_text(para, 40, 0)[0] == "First paragraph here."
    sentences = "One sentence ends here. Another one starts and goes on for a while."
    assert chunk_text(sentences, 40, 0)[0] == "One sentence ends here."
    words = "alpha beta gamma delta epsilon zeta eta theta iota kappa"
    chunks = chunk_text(words, 20, 0)
    assert all(set(c.split()) <= set(words.split()) for c in chunks)  # whole words only
    assert " ".join(chunks) == words


def test_overlapping_chunks_start_on_a_word() -> None:
    text = " ".join(f"word{i}" for i in range(200))
    for chunk in chunk_text(text, 60, 15)[1:]:
        assert chunk.startswith("word"), chunk


def test_unicode_is_chunked_by_characters_not_bytes() -> None:
    text = "Ζέβρες και ακτινίδια. " * 20 + "日本語の文章です。" * 20 + " 🦓🥝" * 30
    chunks = chunk_text(text, 50, 10)
    assert all(len(c) <= 50 for c in chunks)
    assert "".join(chunks).count("🦓") >= 30  # nothing dropped or split into garbage
    assert all(c.encode("utf-8").decode("utf-8") == c for c in chunks)


@pytest.mark.parametrize(("size", "overlap"), [(0, 0), (10, 10), (10, 11), (10, -1)])
def test_invalid_settings_are_refused(size: int, overlap: int) -> None:
    with pytest.raises(RagError, match=r"chunk_size|overlap"):
        validate_chunking(size, overlap)
    with pytest.raises(RagError):
        chunk_text("some text", size, overlap)


@settings(max_examples=200, deadline=None)
@given(
    text=st.text(alphabet=st.sampled_from("ab .\n!é日🦓"), max_size=600),
    size=st.integers(1, 80),
    data=st.data(),
)
def test_windows_cover_every_character_and_respect_the_size(
    text: str, size: int, data: st.DataObject
) -> None:
    overlap = data.draw(st.integers(0, size - 1))
    spans = chunk_spans(text, size, overlap)
    if not text.strip():
        assert spans == []
        return
    assert spans[0][0] == 0 and spans[-1][1] == len(text)
    for (a, b), (c, _d) in itertools.pairwise(spans):
        assert a < c <= b  # progress, and no gap between windows
    assert all(0 < b - a <= size for a, b in spans)
