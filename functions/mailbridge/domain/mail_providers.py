"""Public mailbox providers: domains where anyone gets an address, so many unrelated customers
share one. The per-domain acknowledgement limit (services/outgoing/acknowledgements.py) protects
a third party's domain from a burst of our mail; applied to these it would silence every customer
of the provider after a few dozen tickets an hour, while the per-address limit already stops a
loop (docs/outbox.md, "Acknowledgement limits"). A maintained list: add a provider when its
customers are seen to share a limit; a provider missing here only falls back to the domain limit.
"""

from __future__ import annotations

PUBLIC_MAILBOX_PROVIDERS = frozenset("""
    gmail.com googlemail.com
    outlook.com outlook.de outlook.fr hotmail.com hotmail.co.uk hotmail.de hotmail.fr hotmail.it
    live.com live.co.uk live.de live.fr msn.com
    yahoo.com yahoo.co.uk yahoo.de yahoo.fr yahoo.es yahoo.it yahoo.co.jp yahoo.com.br ymail.com rocketmail.com
    icloud.com me.com mac.com
    aol.com aim.com
    gmx.de gmx.net gmx.at gmx.ch gmx.com web.de freenet.de t-online.de posteo.de mailbox.org
    proton.me protonmail.com protonmail.ch pm.me tutanota.com tuta.io
    mail.ru bk.ru inbox.ru list.ru yandex.ru yandex.com ya.ru rambler.ru
    qq.com foxmail.com 163.com 126.com yeah.net sina.com sohu.com aliyun.com
    naver.com daum.net hanmail.net
    orange.fr wanadoo.fr free.fr laposte.net sfr.fr libero.it virgilio.it seznam.cz wp.pl o2.pl onet.pl interia.pl
    zoho.com zohomail.com fastmail.com hey.com mail.com email.com usa.com hushmail.com
    rediffmail.com comcast.net verizon.net att.net sbcglobal.net bellsouth.net cox.net btinternet.com sky.com
    bigpond.com optusnet.com.au shaw.ca rogers.com sympatico.ca uol.com.br bol.com.br terra.com.br
""".split())


def is_public_provider(domain: str) -> bool:
    """Whether `domain` (of an address) is a public mailbox provider's."""
    return domain.strip().lower().rstrip(".") in PUBLIC_MAILBOX_PROVIDERS


def domain_of(address: str) -> str:
    return address.strip().lower().rpartition("@")[2]
