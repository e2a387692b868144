"""Raw 8-bit subjects in thirteen charsets, each read back from its bytes (docs/parsing.md, "Raw
8-bit headers: which charset"): all of them when the text part declares their charset; without a
usable label all but the ones no reader can tell apart, listed below. The subjects were written for
this test, as a helpdesk receives them."""

import pytest

from mailbridge.domain.parsing import parse_message

CHINESE = [
    '转发：关于下周会议的通知',
    '回复：发票问题',
    '您的订单已发货',
    '【重要】系统维护通知',
    '密码重置请求',
    '关于合同续签的问题',
    '请查收附件中的报价单',
    '你好',
    '测试',
    '申请退款',
    '账户无法登录，请帮忙处理',
    '月度销售报告（三月）',
    '会议纪要 2024-03-15',
    '欢迎加入我们的团队',
    '打印机又坏了',
    '发票抬头需要修改',
    '我想咨询一下产品价格',
    '紧急：服务器宕机',
    '周末加班安排',
    '新年快乐！',
    '快递什么时候到？',
    '报销单据已提交',
    '软件安装失败',
    '请确认收货地址',
    '关于退货流程的疑问',
    '面试通知',
    '工资条',
    '培训资料下载',
    '客户投诉处理结果',
    '年度总结',
    '张三',
    '李四的邮件',
]
JAPANESE = [
    'ツール',
    'ツールのご案内',
    '会議の件',
    'お問い合わせありがとうございます',
    '【重要】パスワード変更のお願い',
    'Re: 見積書の送付について',
    '請求書を送付いたします',
    'ご注文の確認',
    'システムメンテナンスのお知らせ',
    '打ち合わせ日程の調整',
    '納品書',
    '明日の予定',
    '資料をお送りします',
    'アカウント登録完了',
    '配送状況について',
    'ログインできません',
    'サーバー障害のご報告',
    'お疲れ様です',
    '新製品のご紹介',
    'キャンペーンのお知らせ',
    '返品について',
    '至急確認お願いします',
    '議事録',
    '東京支社',
    '領収書発行のお願い',
    '山田太郎',
    '田中',
]
KOREAN = [
    '안녕하세요',
    '회의 안내',
    '주문 확인',
    '비밀번호 재설정',
    '[중요] 시스템 점검 안내',
    '견적서 보내드립니다',
    '문의드립니다',
    '배송 지연 안내',
    '회원가입을 환영합니다',
    '계정 로그인 문제',
    '감사합니다',
    '결제 오류',
    '세금계산서 발행 요청',
    '다음 주 일정',
    '제품 문의',
    '환불 요청합니다',
    '서버 장애 보고',
    '교육 자료',
    '새해 복 많이 받으세요',
    '반품 절차 문의',
    '김철수',
    '홍길동',
]
TRADITIONAL_CHINESE = [
    '轉寄：會議通知',
    '回覆：發票問題',
    '您的訂單已出貨',
    '密碼重設',
    '系統維護公告',
    '請查收附件',
    '報價單',
    '你好',
    '測試',
    '申請退款',
    '王小明',
]
RUSSIAN = [
    'Привет, как дела',
    'Счёт на оплату',
    'Заказ №123',
    'Добрый день',
    'Вопрос по доставке',
    'Не работает принтер',
    'Отчёт за март',
    'Re: Договор',
    'Срочно',
    'Пароль',
    'Встреча в пятницу',
    'Ваш заказ отправлен',
    'Иван Петров',
    'дела',
    'Счёт',
]
UKRAINIAN = [
    'Добрий день',
    'Рахунок за березень',
    'Їжак і ґанок',
]
GREEK = [
    'Γεια σου κόσμε',
    'Παραγγελία',
    'Συνάντηση αύριο',
]
POLISH = [
    'Zażółć gęślą jaźń',
    'Faktura za październik',
    'Spotkanie w środę',
    'Pozdrowienia z Łodzi',
]
CZECH = [
    'Příliš žluťoučký kůň',
    'Faktura č. 123',
    'Schůzka v úterý',
]
WESTERN = [
    'Grüße aus München',
    "Réunion de l'équipe",
    'Année 2024 : résumé',
    'Büro',
    'Straße',
    'Größe',
    'naïve café',
    'Façade',
    'Ñandú',
    'À bientôt',
    'Überweisung fehlgeschlagen',
    '„Angebot“ für Sie',
    'Preis: 50 € inkl. MwSt.',
    'Æble og øl',
    'Ärger',
    'Año nuevo',
    'Å være eller ikke',
]
TURKISH = [
    'Güncelleme başarısız',
    'Şifre sıfırlama',
]
SUBJECTS = {
    "gbk": CHINESE, "shift_jis": JAPANESE, "euc-kr": KOREAN, "big5": TRADITIONAL_CHINESE,
    "koi8_r": RUSSIAN, "cp1251": RUSSIAN + UKRAINIAN, "koi8_u": UKRAINIAN, "iso8859_7": GREEK, "cp1253": GREEK,
    "cp1250": POLISH + CZECH, "iso8859_2": POLISH, "cp1252": WESTERN, "cp1254": TURKISH,
}


def encodable(subject: str, charset: str) -> bool:
    try:
        subject.encode(charset)
    except UnicodeEncodeError:
        return False  # KOI8-R has no numero sign
    return True


CASES = [(subject, charset) for charset, subjects in SUBJECTS.items() for subject in subjects if encodable(subject, charset)]
# Read wrong without a usable label: short Chinese that is also Korean (你好 is 콱봤), Big5 likewise,
# and single-byte charsets that read each other's letters as letters.
AMBIGUOUS = {
    ("你好", "gbk"), ("報價單", "big5"), ("測試", "big5"), ("Γεια σου κόσμε", "iso8859_7"),
    ("Γεια σου κόσμε", "cp1253"), ("Заказ №123", "cp1251"), ("дела", "cp1251"), ("Їжак і ґанок", "koi8_u"),
    ("Spotkanie w środę", "cp1250"), ("Faktura č. 123", "cp1250"), ("Schůzka v úterý", "cp1250"),
    ("Güncelleme başarısız", "cp1254"), ("Şifre sıfırlama", "cp1254"),
}
# Under an ISO-8859-1 label, windows-1252 reads these as Latin letters with symbols, and no other
# reading is clean either (żółć is three accented letters in a row); the € is fine declared.
AMBIGUOUS_UNDER = {
    None: AMBIGUOUS | {("Preis: 50 € inkl. MwSt.", "cp1252")},
    "us-ascii": AMBIGUOUS | {("Preis: 50 € inkl. MwSt.", "cp1252")},
    "iso-8859-1": AMBIGUOUS | {("Zażółć gęślą jaźń", "cp1250"), ("Zażółć gęślą jaźń", "iso8859_2")},
}


def read_subject(raw_subject: bytes, label: str | None) -> str:
    head = b"From: a@customer.example\r\nMessage-ID: <m@customer.example>\r\nSubject: " + raw_subject + b"\r\n"
    if label:
        head += f"Content-Type: text/plain; charset={label}\r\n".encode("ascii")
    return parse_message(head + b"\r\nHello.\r\n").subject


def test_every_raw_subject_is_read_in_its_declared_charset():
    misread = [(subject, charset) for subject, charset in CASES if read_subject(subject.encode(charset), charset) != subject]

    assert misread == []


@pytest.mark.parametrize("label", [None, "us-ascii", "iso-8859-1"])
def test_raw_subjects_without_a_usable_label_are_read_right_but_for_the_ambiguous_ones(label):
    misread = {(subject, charset) for subject, charset in CASES if read_subject(subject.encode(charset), label) != subject}

    assert misread <= AMBIGUOUS_UNDER[label], misread - AMBIGUOUS_UNDER[label]
