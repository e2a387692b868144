"""domain/authentication.py: only Google's topmost Authentication-Results vouches for a sender."""

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mailbridge.domain.authentication import authenticate, parse

GOOGLE_PASS = ("mx.google.com;\n       dkim=pass header.i=@customer.example header.s=s1 header.b=abc;\n"
               "       spf=pass (google.com: domain of ann@customer.example designates 192.0.2.25 as permitted "
               "sender) smtp.mailfrom=ann@customer.example;\n"
               "       dmarc=pass (p=REJECT sp=REJECT dis=NONE) header.from=customer.example")
GOOGLE_FAIL = ("mx.google.com; dkim=fail header.i=@customer.example; spf=fail smtp.mailfrom=ann@customer.example;"
               " dmarc=fail (p=REJECT dis=QUARANTINE) header.from=customer.example")


def headers(*values):
    return {"authentication-results": list(values)}


def test_googles_dmarc_pass_for_the_from_domain_is_a_pass():
    result = authenticate(headers(GOOGLE_PASS), "ann@customer.example")
    assert result.record() == {"dmarc": "pass", "spf": "pass", "dkim": "pass", "aligned": True, "verdict": "pass"}


def test_googles_failure_is_a_fail():
    result = authenticate(headers(GOOGLE_FAIL), "ann@customer.example")
    assert (result.verdict, result.dmarc, result.aligned) == ("fail", "fail", False)


def test_no_header_is_none():
    assert authenticate({}, "ann@customer.example").verdict == "none"


def test_a_forged_google_header_below_googles_own_counts_for_nothing():
    result = authenticate(headers(GOOGLE_FAIL, GOOGLE_PASS), "ann@customer.example")
    assert result.verdict == "fail"


def test_a_forged_google_header_on_unstamped_mail_is_not_trusted_when_another_server_is_on_top():
    result = authenticate(headers("relay.example; dmarc=none", GOOGLE_PASS), "ann@customer.example")
    assert result.verdict == "none"


def test_another_authserv_id_on_top_counts_for_nothing():
    forged = GOOGLE_PASS.replace("mx.google.com", "mx.google.com.evil.example")
    assert authenticate(headers(forged), "ann@customer.example").verdict == "none"


def test_a_pass_for_another_domain_than_from_is_not_aligned():
    result = authenticate(headers(GOOGLE_PASS), "ceo@bank.example")
    assert (result.dmarc, result.aligned, result.verdict) == ("pass", False, "fail")


def test_without_dmarc_an_aligned_dkim_signature_passes():
    value = "mx.google.com; dkim=pass header.d=mail.customer.example; spf=softfail smtp.mailfrom=x@other.example"
    result = authenticate(headers(value), "ann@customer.example")
    assert (result.dkim, result.aligned, result.verdict) == ("pass", True, "pass")


def test_one_passing_signature_among_several_is_enough():
    value = ("mx.google.com; dkim=pass header.d=esp.example; dkim=pass header.i=@customer.example;"
             " dmarc=pass header.from=customer.example")
    assert authenticate(headers(value), "ann@customer.example").verdict == "pass"


def test_without_dmarc_an_unaligned_spf_pass_fails():
    value = "mx.google.com; spf=pass smtp.mailfrom=bounce@esp.example"
    assert authenticate(headers(value), "ann@customer.example").verdict == "fail"


def test_garbage_is_none_not_an_error():
    assert authenticate(headers(";;;==((", ""), "").verdict == "none"


# ---- issue 28, item 3: RFC 8601 read as written ------------------------------------------------
BANK = "ceo@bank.example"


def test_a_quoted_local_part_holding_a_dmarc_pass_does_not_beat_googles_fail():
    """The attack: a `;` inside a quoted smtp.mailfrom split the header and the injected pass
    came first."""
    value = ('mx.google.com; dkim=none; spf=pass (google.com: domain of x@evil.example designates 192.0.2.9 '
             'as permitted sender) smtp.mailfrom="x; dmarc=pass header.from=bank.example"@evil.example; '
             "dmarc=fail (p=REJECT sp=REJECT dis=QUARANTINE) header.from=bank.example")
    result = authenticate(headers(value), BANK)
    assert (result.dmarc, result.spf, result.aligned, result.verdict) == ("fail", "pass", False, "fail")


def test_a_quoted_local_part_cannot_add_a_dmarc_pass_where_google_wrote_none():
    value = 'mx.google.com; spf=pass smtp.mailfrom="x;dmarc=pass header.from=bank.example;y"@evil.example'
    result = authenticate(headers(value), BANK)
    assert (result.dmarc, result.aligned, result.verdict) == ("none", False, "fail")


def test_an_escaped_quote_does_not_end_the_quoted_string():
    value = r'mx.google.com; spf=pass smtp.mailfrom="x\"; dmarc=pass header.from=bank.example; \""@evil.example'
    assert parse(value) == ("mx.google.com", [("spf", "pass", "evil.example")])


def test_a_semicolon_in_a_nested_comment_splits_nothing():
    value = ("mx.google.com; dkim=pass (signed (by; dmarc=pass header.from=bank.example) \\) still a comment; "
             "dmarc=pass) header.d=evil.example; dmarc=fail header.from=bank.example")
    assert parse(value) == ("mx.google.com", [("dkim", "pass", "evil.example"), ("dmarc", "fail", "bank.example")])


def test_white_space_and_comments_around_every_token_are_allowed():
    value = ('mx.google.com 1 ;dkim/1 (v1) = (x) pass header (h) . d (p) = customer.example ; '
             'dmarc = pass reason="aligned; ok" header.from=customer.example (end)')
    assert parse(value) == ("mx.google.com", [("dkim", "pass", "customer.example"), ("dmarc", "pass", "customer.example")])
    assert authenticate(headers(value), "ann@customer.example").verdict == "pass"


def test_two_dmarc_results_that_disagree_are_a_fail():
    value = "mx.google.com; dmarc=pass header.from=customer.example; dmarc=fail header.from=customer.example"
    result = authenticate(headers(value), "ann@customer.example")
    assert (result.dmarc, result.verdict) == ("fail", "fail")


def test_without_dmarc_two_spf_results_that_disagree_are_a_fail_and_align_nothing():
    value = "mx.google.com; spf=pass smtp.mailfrom=ann@customer.example; spf=softfail smtp.mailfrom=ann@customer.example"
    result = authenticate(headers(value), "ann@customer.example")
    assert (result.spf, result.aligned, result.verdict) == ("fail", False, "fail")


def test_a_quoted_authserv_id_and_a_none_result_are_read():
    assert parse('"mx.google.com"; none') == ("mx.google.com", [])
    assert authenticate(headers('"mx.google.com"; none'), "ann@customer.example").verdict == "none"


def test_an_unclosed_quote_or_comment_runs_to_the_end_and_hides_nothing_that_passes():
    for value in ('mx.google.com; spf=pass smtp.mailfrom="x@bank.example; dmarc=pass header.from=bank.example',
                  "mx.google.com; spf=pass (x; dmarc=pass header.from=bank.example smtp.mailfrom=x@bank.example"):
        result = authenticate(headers(value), BANK)
        assert (result.dmarc, result.aligned, result.verdict) == ("none", False, "fail")


# Generated headers: every value (quoted local parts, reasons, comments) may hold `;`, `=`,
# quotes, backslashes, parentheses and whole fake results.
HOSTILE = st.lists(st.sampled_from(list(';="()\\@. ab') + ["dmarc=pass", "; dmarc=pass header.from=bank.example",
                                                             "\r\n ", "é"]), max_size=8).map("".join)
ATOM = st.sampled_from(["ann", "x", "bounce-1", "a.b"])
DOMAIN = st.sampled_from(["bank.example", "customer.example", "mail.customer.example", "evil.example"])


def quoted(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\r\n ", " ") + '"'


@st.composite
def comments(draw, depth: int = 1) -> str:
    text = draw(HOSTILE).replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)").replace("\r\n ", " ")
    inner = draw(comments(depth - 1)) if depth and draw(st.booleans()) else ""
    return f"({text}{inner}{draw(HOSTILE).replace(chr(92), '').replace('(', '').replace(')', '')})"


@st.composite
def cfws(draw, required: bool = False) -> str:
    """Folding white space and comments: nothing, a space, a fold, or a comment in spaces."""
    kind = draw(st.sampled_from([" ", "\r\n  ", "comment"] + ([] if required else ["", ""])))
    return f" {draw(comments())} " if kind == "comment" else kind


@st.composite
def property_values(draw, name: str) -> tuple[str, str]:
    """(written value, the domain parse must find) for one property."""
    domain = draw(DOMAIN)
    if name in ("header.from", "header.d"):
        return draw(st.sampled_from([(domain, domain), (quoted(draw(HOSTILE)), "")]))
    if name == "header.i":
        return draw(st.sampled_from([("@" + domain, domain), (f"{draw(ATOM)}@{domain}", domain)]))
    local = draw(st.one_of(ATOM, HOSTILE.map(quoted)))
    return draw(st.sampled_from([(f"{local}@{domain}", domain), (quoted(draw(HOSTILE)), "")]))


@st.composite
def results(draw) -> tuple[str, tuple[str, str, str]]:
    method = draw(st.sampled_from(["dmarc", "spf", "dkim"]))
    result = draw(st.sampled_from(["pass", "fail", "none", "neutral", "softfail", "temperror"]))
    names = {"dmarc": ["header.from"], "spf": ["smtp.mailfrom"], "dkim": ["header.d", "header.i"]}[method]
    chosen = draw(st.lists(st.sampled_from(names + ["header.s", "policy.x"]), unique=True, max_size=3))
    text, found = f"{draw(cfws())}{method}{draw(cfws())}={draw(cfws())}{result}", {}
    if draw(st.booleans()):
        text += f"{draw(cfws(True))}reason={draw(cfws())}{quoted(draw(HOSTILE))}"
    for name in chosen:
        value, domain = draw(property_values(name)) if name in names else (quoted(draw(HOSTILE)), "")
        ptype, prop = name.split(".")
        text += f"{draw(cfws(True))}{ptype}{draw(cfws())}.{draw(cfws())}{prop}{draw(cfws())}={draw(cfws())}{value}"
        found[name] = domain
    domain = next((found[name] for name in names if name in found), "")
    return text + draw(cfws()), (method, result, domain)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(parts=st.lists(results(), max_size=5), head=cfws(), version=st.sampled_from(["", " 1"]))
def test_a_generated_header_is_read_as_written(parts, head, version):
    body = ";".join(text for text, _ in parts) if parts else " none"
    assert parse(f"{head}mx.google.com{version}{head};{body}") == ("mx.google.com", [expected for _, expected in parts])


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(parts=st.lists(results(), min_size=1, max_size=5), fake=HOSTILE)
def test_nothing_inside_a_quoted_value_or_a_comment_changes_the_verdict(parts, fake):
    honest = "mx.google.com; " + "; ".join(text for text, _ in parts)
    smuggled = honest + f'; spf=neutral smtp.mailfrom={quoted(fake + "; dmarc=pass header.from=bank.example")}@evil.example' \
        f" (; dmarc=pass header.from=bank.example {quoted(fake)[1:-1].replace('(', '').replace(')', '').replace(chr(92), '')})"
    without = honest + "; spf=neutral smtp.mailfrom=x@evil.example"
    assert authenticate(headers(smuggled), BANK) == authenticate(headers(without), BANK)
