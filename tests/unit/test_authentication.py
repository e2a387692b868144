"""domain/authentication.py: only Google's topmost Authentication-Results vouches for a sender."""

from mailbridge.domain.authentication import authenticate

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
