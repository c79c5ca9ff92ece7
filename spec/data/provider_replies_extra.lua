--- An independent QA set of real provider replies, collected after the
-- classifier was written and checked against it (none of these were used to
-- write the rules first). Expected outcome and reason follow
-- docs/classification.md's decision rule, not the classifier.
-- Sources (reply wording; the expectations are ours):
--   FM   ActiveCampaign/smtp-field-manual data/codes/{421,450,451,452,501,540,550,551,552,553,554}.json
--   G    Google "Gmail SMTP errors and codes" (support.google.com/a/answer/3726730),
--        as archived in azumakuniyuki/feb-2024-no-auth-no-entry (2026-02-15 copy)
--   Y    Yahoo "SMTP Error Codes" (senders.yahooinc.com/smtp-error-codes), same archive
--   MS   Microsoft Learn "Email non-delivery reports and SMTP errors in Exchange Online"
--        (5.1.x, 5.4.1, 5.7.1, 5.7.606-649, 5.7.700-750, 4.7.500-699) and Outlook.com's
--        postmaster error list (SC-/OU-/DY-/RP- codes)
--   A    Apple iCloud postmaster (support.apple.com/102322)
--   C    Comcast postmaster SMTP error codes (postmaster.comcast.net/smtp-error-codes.php)
--   MTA  Postfix, Exim, postgrey, milter-greylist, rspamd wording; wrappings as users
--        paste them (Outlook NDR, SendGrid event webhook "reason", AWS SES
--        diagnosticCode, Postfix "said:", Exim "SMTP error from remote mail server")
-- IPs and addresses are documentation values. Fields: reply, outcome, reason,
-- action (optional: checked when present).
return {
  -- Gmail / Google Workspace (G, FM)
  { "smtp;550 5.1.1 The email account that you tried to reach does not exist. Please try "
    .. "double-checking the recipient's email address for typos or unnecessary spaces. Learn more "
    .. "at https://support.google.com/mail/?p=NoSuchUser - gsmtp",
    "bounced", "user_unknown", "remove_address" },
  { "550 5.2.1 The email account that you tried to reach is inactive. For more information, go to "
    .. "https://support.google.com/mail/?p=DisabledUser", "bounced", "mailbox_disabled" },
  { "452 4.2.2 The recipient's inbox is out of storage space. Please direct the recipient to "
    .. "Manage files in your Google Drive storage.", "deferred", "mailbox_full", "retry" },
  { "552 5.2.2 The recipient's inbox is out of storage space and inactive. Please direct the "
    .. "recipient to Manage files in your Google Drive storage.", "bounced", "mailbox_full" },
  { "450 4.2.1 Peak SMTP relay limit exceeded for this customer. This is a temporary error.",
    "deferred", "rate_limited" },
  { "451 4.3.0 Email server has temporarily rejected this message.", "deferred", "temporary_failure" },
  { "smtp;451 4.3.0 Mail server temporarily rejected message. - gsmtp", "deferred", "temporary_failure" },
  { "host gmail-smtp-in.l.google.com[192.0.2.27] said: 451 4.3.0 Multiple destination domains per "
    .. "transaction is unsupported. Please try again. (in reply to RCPT TO command)",
    "deferred", "too_many_recipients" },
  { "421 4.3.0 Temporary System Problem. Try again later.", "deferred", "temporary_failure" },
  { "451 4.4.2 Timeout - closing connection.", "deferred", "network_error" },
  { "smtp; 421 4.4.5 Server busy, try again later. - gsmtp", "deferred", "temporary_failure" },
  { "451 4.5.0 SMTP protocol violation, see RFC 5321.", "deferred", "protocol_error" },
  { "452 4.5.3 Domain policy size per transaction exceeded, please try this recipient in a "
    .. "separate transaction.", "deferred", "too_many_recipients" },
  { "smtp; 452 4.5.3 Your message has too many recipients. - gsmtp", "deferred", "too_many_recipients" },
  { "421 4.7.0 IP not in whitelist for RCPT domain, closing connection.", "deferred", "policy" },
  { "smtp; 421 4.7.0 TLS required for RCPT domain, closing connection. - gsmtp", "deferred", "tls_required" },
  { "421 4.7.0 The IP address sending this message does not have a PTR record, or the "
    .. "corresponding forward DNS entry does not point to the sending IP. To protect our users from "
    .. "spam, email sent from your IP address has been temporarily rate limited.",
    "deferred", "reverse_dns" },
  { "421 4.7.0 [192.0.2.1] This message is suspicious due to the very low reputation of the "
    .. "sending IP address. To protect our users from spam, email sent from your IP address has "
    .. "been temporarily rate limited.", "deferred", "reputation" },
  { "smtp;421 4.7.0 [192.0.2.1] Our system has detected that this message is suspicious due to "
    .. "the very low reputation of the sending domain. To best protect our users from spam, the "
    .. "message has been blocked. - gsmtp", "deferred", "reputation" },
  { "smtp;421 4.7.0 [192.0.2.1] Our system has detected that this message is suspicious due to "
    .. "the nature of the content and/or the links within. To best protect our users from spam, the "
    .. "message has been blocked. - gsmtp", "deferred", "spam_content" },
  { "451 4.7.23 192.0.2.1 The sending IP address for this message doesn't have a PTR record, or "
    .. "the PTR record's forward DNS entry doesn't match the sending IP address. To protect users "
    .. "from spam, your email has been temporarily rate limited.", "deferred", "reverse_dns" },
  { "451 4.7.24 The SPF record of the sending domain has one or more suspicious entries. To "
    .. "protect our users from spam, email sent from your IP address has been temporarily rate "
    .. "limited.", "deferred", "auth_failed" },
  { "451 4.7.26 Unauthenticated email from example.com is not accepted due to domain's DMARC "
    .. "policy, but temporary DNS failures prevent authentication.", "deferred", "auth_failed" },
  { "421 4.7.27 Your email has been rate limited because SPF authentication didn't pass for this "
    .. "message. Gmail requires all bulk email senders to authenticate their email with SPF.",
    "deferred", "auth_failed" },
  { "421 4.7.28 Gmail has detected an unusual rate of email originating from your IP address "
    .. "192.0.2.1. To protect our users from spam, email sent from your IP address has been "
    .. "temporarily rate limited.", "deferred", "reputation" },
  { "421 4.7.28 Gmail has detected an unusual rate of unsolicited email originating from your DKIM "
    .. "domain example.com. To protect our users from spam, email sent from your domain has been "
    .. "temporarily rate limited.", "deferred", "reputation" },
  { "421 4.7.28 Gmail has detected an unusual rate of unsolicited email containing one of your URL "
    .. "domains. To protect our users from spam, email with the URL has been temporarily rate "
    .. "limited.", "deferred", "reputation" },
  { "421 4.7.29 Your email has been rate limited because you're not using a TLS connection. Gmail "
    .. "requires all bulk email senders to use TLS/SSL for SMTP connections.", "deferred", "tls_required" },
  { "421 4.7.30 Your email has been rate limited because DKIM authentication didn't pass for this "
    .. "message. Gmail requires all email bulk senders to authenticate their email with DKIM.",
    "deferred", "auth_failed" },
  { "421 4.7.40 Your email has been rate limited because the sending domain doesn't have a DMARC "
    .. "record, or the DMARC record doesn't specify a DMARC policy.", "deferred", "auth_failed" },
  { "smtp; 421 4.7.32 Your email has been rate limited because the From: header (RFC5322) in this "
    .. "message isn't aligned with either the authenticated SPF or DKIM organizational domain.",
    "deferred", "auth_failed" },
  { "550 5.7.32 Your email was blocked because the From: header (RFC5322) in this message isn't "
    .. "aligned with either the authenticated SPF or DKIM organizational domain.", "blocked", "auth_failed" },
  { "553 5.1.2 We weren't able to find the recipient domain. Please check for any spelling errors.",
    "bounced", "domain_not_found", "remove_address" },
  { "553 5.1.3 The recipient address <a..b@example.com> is not a valid RFC 5321 address.",
    "bounced", "invalid_address", "remove_address" },
  { "smtp;553 5.1.2 The recipient address <.@gmail.com> is not a valid RFC-5321 address. - gsmtp",
    "bounced", "invalid_address", "remove_address" },
  { "553 5.1.7 The sender address <bad@> is not a valid RFC 5321 address.", "blocked", "sender_rejected" },
  { "552 5.3.4 Your message exceeded Google's message size limits.",
    "bounced", "message_too_large", "fix_message" },
  { "552 5.3.4 The number of attachments (600) exceeds Google's limit of 500 attachments.",
    "bounced", "message_too_large" },
  { "552 5.3.4 Your message exceeded Google's message header size limits.", "bounced", "message_too_large" },
  { "550 5.4.5 Daily user sending limit exceeded.", "blocked", "rate_limited", "reduce_rate" },
  { "550 5.4.5 Daily SMTP relay limit exceeded for user.", "blocked", "rate_limited" },
  { "554 5.4.6 Message exceeded 50 hops, this may indicate an email loop.", "bounced", "routing_error" },
  { "503 5.5.1 Bad sequence of commands.", "bounced", "protocol_error" },
  { "502 5.5.1 Unrecognized command.", "bounced", "protocol_error" },
  { "503 5.5.1 RCPT first. An email transaction protocol command was issued out of sequence.",
    "bounced", "protocol_error" },
  { "501 5.5.4 Empty HELO/EHLO argument not allowed, closing connection.", "bounced", "protocol_error" },
  { "550 5.5.3 Too many recipients for this sender.", "deferred", "too_many_recipients" },
  { "554 5.6.0 Email message is malformed. Not accepted.", "bounced", "message_invalid", "fix_message" },
  { "smtp; 552 5.7.0 This message was blocked because its content presents a potential security "
    .. "issue. - gsmtp",
    "blocked", "virus_detected" },
  { "550 5.7.0 Email relay denied 192.0.2.1. The sending email account has been temporarily "
    .. "suspended due to abuse.", "blocked", "relay_denied" },
  { "530-5.7.0 Must issue a STARTTLS command first. For more information, go to\r\n"
    .. "530 5.7.0 About SMTP error messages. - gsmtp\r\n", "blocked", "tls_required" },
  { "530 5.7.0 Authentication required.", "blocked", "auth_required" },
  { "550 5.7.1 The user or domain that you are sending to (or from) has a policy that prohibits "
    .. "the email that you sent. Contact your domain administrator for assistance.", "blocked", "policy" },
  { "550 5.7.1 This message is likely unsolicited email. To reduce the amount of spam sent to "
    .. "Gmail, this message has been blocked.", "blocked", "spam_content" },
  { "550 5.7.1 This message does not meet IPv6 sending guidelines regarding PTR records and "
    .. "authentication.", "blocked", "reverse_dns" },
  { "550 5.7.1 Messages missing a valid Message-ID: header are not accepted.", "bounced", "message_invalid" },
  { "550 5.7.1 Messages with multiple addresses in the From: header are not accepted.",
    "bounced", "message_invalid" },
  { "550 5.7.1 This message is not RFC 5322 compliant because it has duplicate headers.",
    "bounced", "message_invalid" },
  { "550 5.7.1 This email has been rate limited.", "blocked", "rate_limited" },
  { "550 5.7.1 Daily SMTP relay sending limit exceeded for this customer.", "blocked", "rate_limited" },
  { "550 5.7.1 Encoded-word syntax is not permitted in message header Subject. To reduce the "
    .. "amount of spam sent to Gmail, this message has been blocked.", "bounced", "message_invalid" },
  { "534 5.7.14 Please log in through your web browser and then try again.", "blocked", "auth_required" },
  { "smtp;550 5.7.1 Unauthenticated email from example.com is not accepted due to domain's DMARC "
    .. "policy. Please contact the administrator of example.com domain if this was a legitimate "
    .. "mail. - gsmtp", "blocked", "auth_failed", "fix_configuration" },

  -- Yahoo / AOL / Verizon Media (Y, FM)
  { "smtp;421 4.7.0 [TSS04] Messages from 192.0.2.1 temporarily deferred due to user complaints - "
    .. "4.16.55.1; see https://help.yahoo.com/kb/postmaster/SLN3434.html", "deferred", "reputation" },
  { "smtp;421 Max message per connection reached, closing transmission channel",
    "deferred", "too_many_connections" },
  { "smtp;421 Service not available, closing transmission channel", "deferred", "temporary_failure" },
  { "smtp;450 User is receiving mail too quickly", "deferred", "rate_limited" },
  { "smtp;452 temporary domain failure <someone@example.com>", "deferred", "temporary_failure" },
  { "smtp;554 delivery error: dd This user doesn't have a yahoo.com account (someone@yahoo.com) "
    .. "[-5] - mta123.mail.mud.yahoo.com", "bounced", "user_unknown", "remove_address" },
  { "smtp;554 delivery error: dd Sorry, your message to someone@yahoo.com cannot be delivered. "
    .. "This mailbox is disabled (554.30). - mta.mail.yahoo.com", "bounced", "mailbox_disabled" },
  { "smtp;554 5.7.9 Message not accepted for policy reasons. See "
    .. "https://help.yahoo.com/kb/postmaster/SLN7253.html", "blocked", "policy" },
  { "smtp;554 Message not allowed - [PH01] Email not accepted for policy reasons. Please visit "
    .. "https://help.yahoo.com/kb/postmaster/SLN5067.html [120]", "blocked", "spam_content" },
  { "smtp;554 Message not allowed - Headers are not RFC compliant[291]", "bounced", "message_invalid" },
  { "smtp;554 delivery error: dd someone@yahoo.com is no longer valid. [-20] - mta.mail.yahoo.com",
    "bounced", "user_unknown", "remove_address" },
  { "remote host said: 554 delivery error: dd This user doesn't have a yahoo.com account "
    .. "(testing123@yahoo.com) [-5] - mta123.mail.mud.yahoo.com", "bounced", "user_unknown" },

  -- Microsoft: Exchange Online, Outlook.com (MS, FM)
  { "smtp;550 5.5.0 Requested action not taken: mailbox unavailable. "
    .. "[BN8NAM12FT001.eop-nam12.prod.protection.outlook.com]", "bounced", "user_unknown", "remove_address" },
  { "smtp;550 5.7.1 Service unavailable, MailFrom domain is listed in Spamhaus. To request removal "
    .. "from this list see https://www.spamhaus.org/query/lookup/ (S8002) "
    .. "[BN8NAM12FT001.eop-nam12.prod.protection.outlook.com]", "blocked", "blocklisted", "fix_reputation" },
  { "550 5.7.1 Service unavailable, Client host [192.0.2.1] blocked using Spamhaus. To request "
    .. "removal from this list see https://www.spamhaus.org/query/lookup/ (AS3130)",
    "blocked", "blocklisted" },
  { "smtp;554 5.2.122 The recipient has exceeded their limit for the number of messages they can "
    .. "receive per hour. For more information go to http://go.microsoft.com/fwlink/?LinkId=526653. "
    .. "[outlook.com]", "bounced", "rate_limited" },
  { "smtp;421 4.3.2 Service not available [outlook.com]", "deferred", "temporary_failure" },
  { "smtp;421 4.3.2 The maximum number of concurrent connections per resource forest has exceeded "
    .. "a limit, closing transmission channel. example.com. PRX8", "deferred", "too_many_connections" },
  { "smtp;450 4.7.3 Organization queue quota exceeded. [outlook.com]", "deferred", "rate_limited" },
  { "smtp;452 4.3.1 Insufficient system resources (TSTE) [outlook.com]", "deferred", "temporary_failure" },
  { "smtp;501 5.1.3 Invalid address [outlook.com]", "bounced", "invalid_address" },
  { "smtp;451 4.7.0 Temporary server error. Please try again later. PRX4 NextHop: example.com",
    "deferred", "temporary_failure" },
  { "550 5.4.1 Recipient address rejected: Access denied. AS(201806281) "
    .. "[DM6NAM11FT001.eop-nam11.prod.protection.outlook.com]", "bounced", "user_unknown" },
  { "smtp;550 5.4.1 [someone@example.com]: Recipient address rejected: Access denied [example.com]",
    "bounced", "user_unknown" },
  { "550 5.7.511 Access denied, banned sender[192.0.2.1]. To request removal from this list please "
    .. "forward this message to delist@messaging.microsoft.com.", "blocked", "blocklisted" },
  { "550 5.7.750 Service unavailable. Client blocked from sending from unregistered domains.",
    "blocked", "reputation" },
  { "550 5.7.705 Access denied, tenant has exceeded threshold.", "blocked", "reputation" },
  { "Remote Server returned '451 4.7.500 Server busy. Please try again later from [192.0.2.1]. "
    .. "(S77714)'",
    "deferred", "rate_limited" },
  { "550 5.7.515 Access denied, sending domain [EXAMPLE.COM] doesn't meet the required "
    .. "authentication level.", "blocked", "auth_failed" },
  { "Remote Server returned '550 5.7.520 Access denied, Your organization does not allow external "
    .. "forwarding. Please contact your administrator for further assistance. AS(7555)'",
    "blocked", "policy" },
  { "550 5.7.23 The message was rejected because of Sender Policy Framework violation.",
    "blocked", "auth_failed" },
  { "550 5.7.57 Client was not authenticated to send anonymous mail during MAIL FROM.",
    "blocked", "auth_required" },
  { "550 5.7.64 TenantAttribution; Relay Access Denied", "blocked", "relay_denied" },
  { "550 5.7.124 Sender not in allowed-senders list", "blocked", "policy" },
  { "550 5.6.11 SMTPSEND.BareLinefeedsAreIllegal; message contains bare linefeeds",
    "bounced", "message_invalid" },
  { "554 5.6.211 Invalid MIME Content: Single text value size (32784) exceeded allowed maximum "
    .. "(32768) for the 'X-Header' header.", "bounced", "message_invalid" },
  { "550 5.1.8 Access denied, bad outbound sender.", "blocked", "sender_rejected" },
  { "550 SC-001 (BAY004-MC1F7) Unfortunately, messages from 192.0.2.1 weren't sent. Please "
    .. "contact your Internet service provider since part of their network is on our block list.",
    "blocked", "blocklisted" },
  { "550 OU-002 (SNT004-MC2F8) Unfortunately, messages from 192.0.2.1 weren't sent. Please contact "
    .. "your Internet service provider. You can tell them that Hotmail does not relay "
    .. "dynamically-assigned IP ranges.", "blocked", "policy" },
  { "550 DY-001 (SNT004-MC1F32) Unfortunately, messages from 192.0.2.1 weren't sent. We generally "
    .. "do not accept email from dynamic IP's as they are not typically used to deliver "
    .. "unauthenticated SMTP e-mail to an Internet mail server.", "blocked", "policy" },
  { "421 RP-001 (BAY004-MC1F25) Unfortunately, some messages from 192.0.2.1 weren't sent. Please "
    .. "try again. We have limits for how many messages can be sent per hour and per day.",
    "deferred", "rate_limited" },
  { "550 5.7.1 Unfortunately, messages from [192.0.2.1] weren't sent. Please contact your "
    .. "Internet service provider since part of their network is on our block list (S3140).",
    "blocked", "blocklisted" },
  { "Remote Server returned '550 5.1.10 RESOLVER.ADR.RecipientNotFound; Recipient not found by "
    .. "SMTP address lookup'", "bounced", "user_unknown", "remove_address" },
  { "Remote Server returned '554 5.4.14 Hop count exceeded - possible mail loop ATTR34'",
    "bounced", "routing_error" },
  { "Remote Server returned '550 5.7.133 RESOLVER.RST.SenderNotAuthenticatedForGroup; "
    .. "authentication required; Delivery restriction check failed as sender not authenticated'",
    "blocked", "policy" },
  { "Remote Server returned '< #5.4.316 smtp;550 5.4.316 Message expired, connection refused "
    .. "(Socket error code 10061)>'", "bounced", "network_error" },
  { "Remote Server returned '550 5.4.300 Message expired'", "bounced", "expired" },

  -- Apple iCloud (A, FM)
  { "smtp;550 5.1.1 <someone@icloud.com>: user does not exist", "bounced", "user_unknown" },
  { "smtp;550 5.7.1 [CS01] Message rejected due to local policy. Please visit "
    .. "https://support.apple.com/en-us/HT204137", "blocked", "policy" },
  { "smtp;550 5.7.1 Your message was rejected due to example.com's DMARC policy. See "
    .. "https://support.apple.com/en-us/HT204137 for info", "blocked", "auth_failed" },
  { "smtp;550 5.7.1 Your email was rejected due to having a domain present in the Spamhaus DBL -- "
    .. "see https://www.spamhaus.org/dbl/", "blocked", "spam_content" },
  { "smtp;421 4.7.1 Messages to someone@icloud.com deferred due to excessive volume. Try again "
    .. "later - https://support.apple.com/en-us/HT204137", "deferred", "rate_limited" },
  { "smtp;552 5.2.2 <someone@icloud.com>: user is overquota", "bounced", "mailbox_full" },
  { "smtp;554 5.7.1 <someone@icloud.com>: Relay access denied", "blocked", "relay_denied" },
  -- the client made too many errors: the server defers it by policy (4.7.0, no decisive text)
  { "smtp;421 4.7.0 me.com Error: too many errors", "deferred", "policy" },

  -- Comcast, AT&T, Verizon (C, FM)
  { "smtp;550 5.1.1 Not our Customer", "bounced", "user_unknown", "remove_address" },
  { "smtp;550 5.1.1 <someone@comcast.net> recipient mailbox unallocated", "bounced", "user_unknown" },
  { "smtp;550 5.2.0 Message rejected due to DMARC. Please see "
    .. "http://postmaster.comcast.net/smtp-error-codes.php#DM000001", "blocked", "auth_failed" },
  { "smtp;552 5.1.1 <someone@comcast.net> recipient rejected - extended quota violation",
    "bounced", "mailbox_full" },
  { "smtp;450 4.2.0 <someone@comcast.net> - Recipient temporarily unavailable",
    "deferred", "temporary_failure" },
  { "554 resimta-po-01v.sys.comcast.net comcast 192.0.2.1 Comcast block for spam. Please see "
    .. "http://postmaster.comcast.net/smtp-error-codes.php#BL000000", "blocked", "blocklisted" },
  { "554 resimta-po-01v.sys.comcast.net comcast 192.0.2.1 found on one or more DNSBLs, see "
    .. "http://postmaster.comcast.net/smtp-error-codes.php#BL000010", "blocked", "blocklisted" },
  { "smtp;550 5.2.1 <SOMEONE@PRODIGY.NET>... Addressee unknown, relay=[192.0.2.1]",
    "bounced", "user_unknown" },
  { "smtp;550 5.7.1 Connections not accepted from servers without a valid sender domain. Fix "
    .. "reverse DNS for 192.0.2.1", "blocked", "reverse_dns" },
  { "smtp;550 relaying denied for <someone@example.com>", "blocked", "relay_denied" },
  { "smtp;552 1 Requested mail action aborted, mailbox not found", "bounced", "user_unknown" },

  -- Mimecast (FM)
  { "smtp;550 Administrative prohibition - envelope blocked - "
    .. "https://community.mimecast.com/docs/DOC-1369#550 [abc123]", "blocked", "policy" },
  { "smtp;550 Rejected by header based Anti-Spoofing policy: someone@example.com - "
    .. "https://community.mimecast.com/docs/DOC-1369#550 [abc123]", "blocked", "policy" },
  { "smtp;550 Rejected by header based manually Blocked Senders: someone@example.com - "
    .. "https://community.mimecast.com/docs/DOC-1369#550 [abc123]", "blocked", "policy" },
  { "smtp;550 Envelope blocked - User Entry - https://community.mimecast.com/docs/DOC-1369#550 "
    .. "[abc123]", "blocked", "policy" },
  { "smtp;554 Email rejected due to security policies - "
    .. "https://community.mimecast.com/docs/DOC-1369#554 [abc123]", "blocked", "policy" },
  { "smtp;451 Open relay not allowed - https://community.mimecast.com/docs/DOC-1369#451 [abc123]",
    "deferred", "policy" },
  { "smtp;451 Internal resource temporarily unavailable - "
    .. "https://community.mimecast.com/docs/DOC-1369#451 [abc123]", "deferred", "greylisted" },
  { "smtp;451 Invalid Recipient - https://community.mimecast.com/docs/DOC-1369#451 [abc123]",
    "deferred", "user_unknown" },

  -- Proofpoint, Barracuda, Symantec, Trend Micro, ZeroSpam (FM)
  { "smtp;550 5.1.1 <someone@example.com>: Recipient address rejected: User unknown",
    "bounced", "user_unknown" },
  { "smtp;550 5.1.1 - This is not a valid email address. Please verify that you have the correct "
    .. "email address for your recipient.", "bounced", "user_unknown" },
  { "smtp;550 5.7.1 <someone@example.com>: Recipient address rejected: User email address is "
    .. "marked as invalid.", "bounced", "user_unknown" },
  { "smtp;550 5.7.1 Relaying denied", "blocked", "relay_denied" },
  { "smtp;421 4.1.1 <someone@example.com>: Recipient address rejected: unverified address: Address "
    .. "verification in progress", "deferred", "user_unknown" },
  { "554 5.7.1 Service unavailable; Client host [192.0.2.1] blocked using Proofpoint Dynamic "
    .. "Reputation; Blocked - see https://ipcheck.proofpoint.com/?ip=192.0.2.1",
    "blocked", "blocklisted" },
  { "smtp;550 cuda_nsu 5.1.1 <someone@example.com>... User unknown", "bounced", "user_unknown" },
  { "smtp;550 No such user (someone@example.com)", "bounced", "user_unknown" },
  { "smtp;550 rejecting spoofed message", "blocked", "policy" },
  { "smtp;554 rejected due to spam URL in content", "blocked", "spam_content" },
  { "smtp;554 rejecting banned content", "blocked", "spam_content" },
  { "smtp;450 cuda_nsu 4.7.1 <someone@example.com>: Recipient address rejected: Policy Rejection- "
    .. "Abuse. Go away.", "deferred", "policy" },
  { "smtp;451 4.7.1 <someone@example.com>: Recipient address rejected: Greylisted for 5 minutes",
    "deferred", "greylisted" },
  { "smtp;421 Temporary failure, please try again later.", "deferred", "temporary_failure" },
  { "smtp;550 Invalid recipient <someone@example.com> (#5.1.1)", "bounced", "user_unknown" },
  { "smtp;553 Message filtered. Refer to the Troubleshooting page at "
    .. "http://www.symanteccloud.com/troubleshooting for more information. (#5.7.1)",
    "blocked", "policy" },
  { "smtp;553 you are trying to use me [server-1.messagelabs.com] as a relay, but I have not been "
    .. "configured to let you [192.0.2.1, example.com] do this. (#5.7.1)", "blocked", "relay_denied" },
  { "smtp;554 5.7.1 <someone@example.com>: Recipient address rejected: BLOCK-SEND-ER.",
    "blocked", "policy" },
  { "smtp;554 5.7.1 <someone@example.com>: Recipient address rejected: Invalid-Recipient.",
    "bounced", "user_unknown" },
  { "smtp;554 5.7.1 <someone@example.com>: Recipient address rejected: Not in recipient list",
    "bounced", "user_unknown" },
  { "smtp;450 4.2.0 <someone@example.com>: Recipient address rejected: example.com greylisted for "
    .. "60 seconds by ZEROSPAM", "deferred", "greylisted" },

  -- Other mailbox providers (FM)
  { "smtp;550 Message was not accepted -- invalid mailbox. Local mailbox someone@mail.ru is "
    .. "unavailable: account is disabled", "bounced", "mailbox_disabled" },
  { "smtp;550 spam message rejected. Please visit http://help.mail.ru/notspam-support/id or report "
    .. "details to abuse@corp.mail.ru.", "blocked", "spam_content" },
  { "smtp;550 5.7.1 Policy rejection on the target address", "blocked", "policy" },
  { "smtp;550 5.7.1 No such user!", "bounced", "user_unknown" },
  { "smtp;550 5.7.1 Email rejected per DMARC policy for mail.ru", "blocked", "auth_failed" },
  { "smtp;554 5.7.1 [1] Message rejected under suspicion of SPAM; https://ya.cc/1IrBc",
    "blocked", "spam_content" },
  { "smtp;450 4.2.1 The recipient has exceeded message rate limit. Try again later.",
    "deferred", "rate_limited" },
  { "smtp;552 5.2.2 Mailbox size limit exceeded", "bounced", "mailbox_full" },
  { "smtp;554 5.7.1 Spam message rejected; If this is not spam contact abuse", "blocked", "spam_content" },
  { "smtp;540 5.7.1 <someone@rambler.ru>: recipient address rejected: Inactive",
    "bounced", "mailbox_disabled" },
  { "smtp;554 5.7.1 Email cannot be delivered. Reason: Email flagged as Spam.", "blocked", "spam_content" },
  { "smtp;552 5.7.1 virus Eicar-Test-Signature detected by Zoho Mail", "blocked", "virus_detected" },
  { "smtp;550 5.1.1 <someone@zoho.com> User unknown", "bounced", "user_unknown" },
  { "smtp;554 5.2.2 <someone@free.fr>: Recipient address rejected: Quota exceeded (mailbox for "
    .. "user is full)", "bounced", "mailbox_full" },
  { "smtp;552 5.2.2 user quota exceeded (UserSearch)", "bounced", "mailbox_full" },
  { "smtp;552 5.1.1 Boite du destinataire pleine. Recipient overquota. OFR_417 [417]",
    "bounced", "mailbox_full" },
  { "smtp;552 Requested mail action aborted: exceeded storage allocation Quota exceeded.",
    "bounced", "mailbox_full" },
  { "smtp;551 5.7.1 Due to the very low reputation of the sending domain, this message has been "
    .. "blocked (Code 2).", "blocked", "reputation" },
  { "smtp;551 5.7.1 Loop detected: Email is sent and forwarded from/to improvmx.com. (#id-5.9.0)",
    "bounced", "routing_error" },
  { "smtp;551 5.7.1 Domain not found (#id-5.9.2)", "bounced", "domain_not_found" },
  { "smtp;450 4.1.8 Sender address rejected: Domain not found (in reply to RCPT TO command))",
    "deferred", "sender_rejected" },
  { "smtp;501 Syntax error in parameters or arguments", "bounced", "protocol_error" },

  -- Blocklists, greylisting, MTAs and the wrappings users paste (MTA)
  { "host mx.example.com[192.0.2.9] said: 554 5.7.1 Service unavailable; Client host [192.0.2.1] "
    .. "blocked using zen.spamhaus.org; https://www.spamhaus.org/query/ip/192.0.2.1 (in reply to RCPT "
    .. "TO command)", "blocked", "blocklisted", "fix_reputation" },
  { "554 5.7.1 Service unavailable; Client host [192.0.2.1] blocked using bl.spamcop.net; "
    .. "Blocked - see https://www.spamcop.net/bl.shtml?192.0.2.1", "blocked", "blocklisted" },
  { "554 5.7.1 Service unavailable; Client host [192.0.2.1] blocked using b.barracudacentral.org; "
    .. "http://www.barracudanetworks.com/reputation/?pr=1&ip=192.0.2.1", "blocked", "blocklisted" },
  { "554 5.7.1 Service unavailable; Sender address [someone@example.com] blocked using "
    .. "dbl.spamhaus.org; https://www.spamhaus.org/query/domain/example.com", "blocked", "blocklisted" },
  { "554 5.7.1 Service unavailable; Helo command [mail.example.com] blocked using "
    .. "dbl.spamhaus.org", "blocked", "blocklisted" },
  { "smtp; 450 4.7.1 Client host rejected: cannot find your hostname, [192.0.2.1]",
    "deferred", "reverse_dns" },
  { "450 4.7.25 Client host rejected: cannot find your hostname, [192.0.2.1]", "deferred", "reverse_dns" },
  { "450 4.2.0 <someone@example.com>: Recipient address rejected: Greylisted, see "
    .. "http://postgrey.schweikert.ch/help/example.com.html", "deferred", "greylisted", "retry" },
  { "SMTP error from remote mail server after RCPT TO:<someone@example.com>: 451 4.7.1 Greylisting "
    .. "in action, please come back later", "deferred", "greylisted" },
  { "451 4.7.1 Try again later", "deferred", "temporary_failure" },
  { "host mx.example.com[192.0.2.1] said: 451 4.7.1 <someone@example.com>: Recipient address "
    .. "rejected: Greylisted, see http://postgrey.schweikert.ch/help/example.com.html (in reply to "
    .. "RCPT TO command)", "deferred", "greylisted" },
  { "host gmail-smtp-in.l.google.com[192.0.2.27] said: 550-5.1.1 The email account that you tried "
    .. "to reach does not exist. Please try 550-5.1.1 double-checking the recipient's email address "
    .. "for typos or 550-5.1.1 unnecessary spaces. 550 5.1.1 "
    .. "https://support.google.com/mail/?p=NoSuchUser a1si2 - gsmtp (in reply to RCPT TO command)",
    "bounced", "user_unknown", "remove_address" },
  { "host mx.example.com[192.0.2.1] said: 550 5.1.1 <someone@example.com>: Recipient address "
    .. "rejected: User unknown in virtual mailbox table (in reply to RCPT TO command)",
    "bounced", "user_unknown" },
  { "host mx.example.com[192.0.2.1] said: 554 5.7.1 <someone@example.com>: Relay access denied "
    .. "(in reply to RCPT TO command)", "blocked", "relay_denied" },
  { "host mx.example.com[192.0.2.1] said: 552 5.3.4 Message size exceeds fixed limit (in reply "
    .. "to end of DATA command)", "bounced", "message_too_large" },
  { "host mx.example.com[192.0.2.1] said: 550 5.7.1 <sender@example.org>: Sender address "
    .. "rejected: Access denied (in reply to MAIL FROM command)", "blocked", "sender_rejected" },
  { "SMTP error from remote mail server after RCPT TO:<someone@example.com>:\n"
    .. "    550 5.1.1 <someone@example.com>: Recipient address rejected: User unknown in local "
    .. "recipient table", "bounced", "user_unknown" },
  { "SMTP error from remote mail server after MAIL FROM:<sender@example.org> SIZE=2048: "
    .. "550 5.7.1 Sender rejected", "blocked", "sender_rejected" },
  { "SMTP error from remote mail server after end of data: 552 5.2.3 Message size exceeds maximum "
    .. "permitted", "bounced", "message_too_large" },
  { "SMTP error from remote mail server after initial connection: 554 5.7.1 Your IP 192.0.2.1 is "
    .. "blacklisted", "blocked", "blocklisted" },
  { "smtp; 550 5.1.1 user unknown", "bounced", "user_unknown", "remove_address" },
  { "smtp; 554 4.4.7 Message expired: unable to deliver in 840 minutes.<421 4.4.0 Unable to lookup "
    .. "DNS for example.com>", "bounced", "expired" },
  { "smtp; 550 5.3.0 <someone@example.com>... Mailbox full", "bounced", "mailbox_full" },
  { "550 5.1.1 The email account that you tried to reach does not exist. Please try "
    .. "double-checking the recipient's email address for typos or unnecessary spaces.",
    "bounced", "user_unknown" },
  { "Bounced Address", "bounced", "suppressed", "none" },
  { "Unsubscribed Address", "bounced", "suppressed", "none" },
  { "Delayed Bounce - Unable to Parse Server Reason", "unknown", "unknown", "review" },
  { "250 2.0.0 OK 1700000000 a1si2 - gsmtp", "delivered", "accepted", "none" },
  { "250 2.6.0 <msgid@example.com> [InternalId=123] Queued mail for delivery", "delivered", "accepted" },
  -- More wrappings users paste: SendGrid event webhook "reason"/"response", AWS SES
  -- diagnosticCode and its suppression note, Outlook NDR lines, Postfix and Exim (MTA, MS, Y, A)
  { "550 5.1.1 <someone@example.com>: Recipient address rejected: User unknown in virtual alias "
    .. "table", "bounced", "user_unknown", "remove_address" },
  { "\"reason\":\"550 5.1.1 The email account that you tried to reach does not exist.\"",
    "bounced", "user_unknown" },
  { "Spam Reporting Address", "bounced", "suppressed", "none" },
  { "451 4.7.650 The mail server [192.0.2.1] has been temporarily rate limited due to IP "
    .. "reputation. For e-mail delivery information, see https://aka.ms/postmaster (S775) "
    .. "[Name=Protocol Filter Agent][AGT=PFA][MxId=11BB58D4C0A0]", "deferred", "reputation" },
  { "smtp; 550 5.7.1 Service unavailable, Client host [192.0.2.1] blocked using Spamhaus. To "
    .. "request removal from this list see https://www.spamhaus.org/query/ip/192.0.2.1 (AS3130) "
    .. "[BN8NAM11FT012.eop-nam11.prod.protection.outlook.com]", "blocked", "blocklisted", "fix_reputation" },
  { "smtp; 552 5.2.2 Mailbox full", "bounced", "mailbox_full" },
  { "Amazon SES has suppressed sending to this address because it has a recent history of "
    .. "bouncing as an invalid address.", "bounced", "suppressed", "none" },
  { "host mx1.comcast.net[192.0.2.5] said: 554 5.7.1 resimta-h1p-028598.sys.comcast.net comcast "
    .. "192.0.2.1 Comcast BL004 Blocked for spam. Please see "
    .. "http://postmaster.comcast.net/smtp-error-codes.php#BL000001 (in reply to MAIL FROM command)",
    "blocked", "blocklisted" },
  { "connect to mx.example.com[192.0.2.1]:25: Connection timed out", "deferred", "network_error" },
  { "SMTP error from remote mail server after pipelined RCPT TO:<someone@example.com>: 550 5.1.1 "
    .. "<someone@example.com>: Recipient address rejected: User unknown in relay recipient table",
    "bounced", "user_unknown" },
  { "SMTP error from remote mail server after RCPT TO:<someone@yahoo.com>: 554 delivery error: dd "
    .. "This user doesn't have a yahoo.com account (someone@yahoo.com) [0] - "
    .. "mta1234.mail.ne1.yahoo.com", "bounced", "user_unknown", "remove_address" },
  { "Remote Server returned '550 5.7.1 RESOLVER.RST.AuthRequired; authentication required'",
    "blocked", "policy" },
  { "Remote Server returned '550 5.7.1 RESOLVER.RST.NotAuthorized; not authorized'",
    "blocked", "policy" },
  { "Remote Server returned '554 5.2.2 mailbox full; "
    .. "STOREDRV.Deliver.Exception:QuotaExceededException.MapiExceptionShutoffQuotaExceeded'",
    "bounced", "mailbox_full" },
  { "Remote Server returned '550 5.7.1 Delivery not authorized, message refused'", "blocked", "policy" },
  { "Remote Server returned '554 5.6.0 Corrupt message content; "
    .. "STOREDRV.Deliver.Exception:ConversionFailedException'", "bounced", "message_invalid" },
  { "Remote Server returned '550 4.4.7 QUEUE.Expired; message expired'", "bounced", "expired" },
  { "smtp;550 Invalid Recipient - https://community.mimecast.com/docs/DOC-1369#550 [abc123]",
    "bounced", "user_unknown" },
  { "554 Service unavailable; Client host [192.0.2.1] blocked using Barracuda Reputation; "
    .. "http://www.barracudanetworks.com/reputation/?r=1&ip=192.0.2.1", "blocked", "blocklisted" },
  { "550 5.7.1 Connection refused - 192.0.2.1 - Cloudmark Sender Intelligence (CSI) listing - "
    .. "https://csi.cloudmark.com/en/reset/", "blocked", "blocklisted" },
  { "554 5.7.1 Service unavailable; Client host [192.0.2.1] blocked using dnsbl.sorbs.net; "
    .. "Currently Sending Spam See: http://www.sorbs.net/lookup.shtml?192.0.2.1", "blocked", "blocklisted" },
  { "450 4.3.2 Service currently unavailable", "deferred", "temporary_failure" },
  { "450 4.7.1 <someone@example.com>: Recipient address rejected: Greylisted for 300 seconds (see "
    .. "http://isg.ee.ethz.ch/tools/postgrey/help/example.com.html)", "deferred", "greylisted" },
  { "451 Message temporarily deferred due to unresolvable RFC.5321 from domain; see "
    .. "https://postmaster.yahooinc.com/error-codes", "deferred", "sender_rejected" },
  { "553 5.7.2 [TSS09] All messages from 192.0.2.1 will be permanently deferred; Retrying will "
    .. "NOT succeed. See https://postmaster.yahooinc.com/error-codes", "blocked", "reputation" },
  { "smtp; 550 5.7.9 This mail has been blocked because the sender is unauthenticated. Yahoo requires "
    .. "all senders to authenticate with either SPF or DKIM.", "blocked", "auth_failed" },
  { "553 5.7.1 [BL21] Connections will not be accepted from 192.0.2.1, because the ip is in "
    .. "Spamhaus's list; see https://postmaster.yahooinc.com/error-codes", "blocked", "blocklisted" },
  { "554 delivery error: dd Not a valid recipient - atlas121.aol.mail.ne1.yahoo.com",
    "bounced", "user_unknown", "remove_address" },
  { "521 5.2.1 <someone@aol.com>: AOL will not accept delivery of this message.", "blocked", "policy" },
  { "550 5.7.0 Blocked - see https://support.apple.com/en-us/HT204137", "blocked", "policy" },
  { "421 4.2.0 192.0.2.1 comcast Throttled - try again later. Please see "
    .. "http://postmaster.comcast.net/smtp-error-codes.php#RL000001", "deferred", "rate_limited" },
  { "550-5.7.26 This mail is unauthenticated, which poses a security risk to the sender and Gmail "
    .. "users, and has been blocked. The sender must authenticate with at least one of SPF or DKIM.",
    "blocked", "auth_failed", "fix_configuration" },
  { "smtp; 550 5.7.25 [192.0.2.1] The IP address sending this message does not have a PTR record setup, "
    .. "or the corresponding forward DNS entry does not point to the sending IP.", "blocked", "reverse_dns" },
  { "421-4.7.0 [192.0.2.1 15] Our system has detected that this message is suspicious due to the "
    .. "very low reputation of the sending IP address.", "deferred", "reputation", "reduce_rate" },
  -- Whole lines as users paste them: an Outlook NDR body, SendGrid and SES event JSON,
  -- Postfix and Exim log lines (MTA, MS)
  { "Diagnostic information for administrators:\r\n\r\nGenerating server: "
    .. "DM6PR01MB1234.namprd01.prod.outlook.com\r\n\r\nsomeone@example.com\r\nRemote Server returned "
    .. "'550 5.1.10 RESOLVER.ADR.RecipientNotFound; Recipient not found by SMTP address lookup'\r\n\r\n"
    .. "Original message headers:\r\n\r\nReceived: from DM6PR01MB1234.namprd01.prod.outlook.com "
    .. "(2603:10b6:5:1ca::24) by DM6PR01MB5678.namprd01.prod.outlook.com with HTTPS; Mon, 1 Jan 2024 "
    .. "10:00:00 +0000\r\n", "bounced", "user_unknown", "remove_address" },
  { "{\"email\":\"someone@example.com\",\"event\":\"bounce\",\"reason\":\"550 5.1.1 The email account "
    .. "that you tried to reach does not exist.\",\"status\":\"5.1.1\",\"type\":\"bounce\"}",
    "bounced", "user_unknown", "remove_address" },
  { "{\"email\":\"someone@example.com\",\"event\":\"deferred\",\"response\":\"421 4.7.0 [TSS04] "
    .. "Messages from 192.0.2.1 temporarily deferred due to unexpected volume or user complaints\","
    .. "\"attempt\":\"3\"}", "deferred", "reputation" },
  { "{\"bounceType\":\"Permanent\",\"bouncedRecipients\":[{\"emailAddress\":\"someone@example.com\","
    .. "\"action\":\"failed\",\"status\":\"5.1.1\",\"diagnosticCode\":\"smtp; 550 5.1.1 user unknown\"}]}",
    "bounced", "user_unknown", "remove_address" },
  { "to=<someone@example.com>, relay=mx.example.com[192.0.2.1]:25, delay=1.2, "
    .. "delays=0.1/0/0.5/0.6, dsn=5.1.1, status=bounced (host mx.example.com[192.0.2.1] said: 550 "
    .. "5.1.1 <someone@example.com>: Recipient address rejected: User unknown (in reply to RCPT TO "
    .. "command))", "bounced", "user_unknown" },
  { "to=<someone@example.com>, relay=mx.example.com[192.0.2.1]:25, delay=300, "
    .. "delays=0.1/0/0.5/299, dsn=4.7.1, status=deferred (host mx.example.com[192.0.2.1] said: 451 "
    .. "4.7.1 Greylisted, please try again in 300 seconds (in reply to RCPT TO command))",
    "deferred", "greylisted", "retry" },
  { "to=<someone@example.com>, relay=none, delay=30, delays=0.1/0/30/0, dsn=4.4.1, status=deferred "
    .. "(connect to mx.example.com[192.0.2.1]:25: Connection timed out)", "deferred", "network_error" },
  { "someone@example.com R=dnslookup T=remote_smtp H=mx.example.com [192.0.2.1] "
    .. "X=TLS1.3:TLS_AES_256_GCM_SHA384:256 CV=yes: SMTP error from remote mail server after RCPT "
    .. "TO:<someone@example.com>: 550 5.1.1 User unknown", "bounced", "user_unknown" },
  { "** someone@example.com R=dnslookup T=remote_smtp H=mx.example.com [192.0.2.1]: SMTP error from "
    .. "remote mail server after end of data: 554 5.7.1 Message rejected as spam",
    "blocked", "spam_content" },
  { "Remote Server returned '<192.0.2.1 #5.0.0 smtp; 5.1.1 smtp;550 5.1.1 User unknown>'",
    "bounced", "user_unknown" },
  { "550-5.7.1 [192.0.2.1      12] Our system has detected that this message is\r\n"
    .. "550-5.7.1 likely unsolicited mail. To reduce the amount of spam sent to Gmail,\r\n"
    .. "550-5.7.1 this message has been blocked. Please visit\r\n"
    .. "550 5.7.1  https://support.google.com/mail/?p=UnsolicitedMessageError z1si - gsmtp\r\n",
    "blocked", "spam_content", "fix_message" },
  { "smtp;554 30 Sorry, your message to someone@aol.com cannot be delivered. This mailbox is "
    .. "disabled (554.30).", "bounced", "mailbox_disabled" },
  -- Blocklists and rate limits as Mailgun's and Mailprotector's bounce pages quote them, and
  -- Postfix's anvil limits (help.mailgun.com "Classified Bounces List",
  -- support.mailprotector.com "Common Email Bouncebacks", MTA)
  { "553 5.3.0 flpd568 DNSBL:RBL 521< 192.0.2.1 >_is_blocked.For assistance forward this error to "
    .. "abuse_rbl@abuse-att.net", "blocked", "blocklisted", "fix_reputation" },
  { "smtp; 554 mcc-ibgw-6001a.ext.cloudfilter.net cmsmtp [192.0.2.1] is listed on Cloudmark "
    .. "CSI-Global. Please visit https://csi.cloudmark.com/en/reset AUP#RBL", "blocked", "blocklisted" },
  { "smtp; 550 5.7.1 Service unavailable; client [192.0.2.1] blocked using Cloudmark Sender "
    .. "Intelligence (Visit https://csi.cloudmark.com/reset-request/ if you feel this is in error.). "
    .. "Please provide the following IP address when reporting problems: [192.0.2.1]",
    "blocked", "blocklisted" },
  { "Service unavailable; Client host [mail.example.com] blocked by bl.spamcop.net; 192.0.2.1 "
    .. "(mail.example.com:blocked)", "blocked", "blocklisted" },
  { "4.7.500 Server busy. Please try again later from [192.0.2.27]. (S77719) "
    .. "[SY2PEPF00004FF3.ausprd01.prod.outlook.com 2025-06-27T03:22:50.770Z 08DDB10C5071CA89]",
    "deferred", "rate_limited", "reduce_rate" },
  { "Message not delivered. Reason: host destination-1834.routing.emailservice.io[192.0.2.114] "
    .. "said: 421 4.4.2 Message submission rate for this client has exceeded the configured limit "
    .. "(in reply to MAIL FROM command)", "deferred", "rate_limited" },
  { "Message not delivered. Reason: host mx.example.com[192.0.2.1] said: 450 4.2.0 "
    .. "<someone@example.com>: Recipient address rejected: Greylisted, see "
    .. "https://postgrey.example.com/help (in reply to RCPT TO command)", "deferred", "greylisted" },
  { "421 4.7.0 mx.example.com Error: too many connections from 192.0.2.1",
    "deferred", "too_many_connections" },
  { "450 4.7.1 Error: too much mail from 192.0.2.1", "deferred", "rate_limited" },
  { "452 4.5.3 Error: too many recipients", "deferred", "too_many_recipients" },
}
