--- Real replies of real providers, each with the outcome and reason smtpkit
-- must give. Wording from the providers' public pages of SMTP errors (Gmail:
-- support.google.com/a/answer/3726730; Yahoo/AOL: senders.yahooinc.com/smtp-error-codes;
-- Microsoft: the Exchange Online / Outlook.com NDR pages; Apple: iCloud's
-- postmaster page; Comcast, Cox, Mimecast, Proofpoint support pages), from
-- MTAs (Postfix, Exim, postgrey, milter-greylist) and from the Sisimai corpus
-- (spec/data/sisimai-diagnostics.tsv). IPs and addresses are documentation
-- values. Fields: reply, outcome, reason.
return {
  -- Gmail / Google Workspace
  { "550-5.1.1 The email account that you tried to reach does not exist. Please try\r\n"
    .. "550-5.1.1 double-checking the recipient's email address for typos or\r\n"
    .. "550-5.1.1 unnecessary spaces. Learn more at\r\n"
    .. "550 5.1.1  https://support.google.com/mail/?p=NoSuchUser d2si123 - gsmtp\r\n",
    "bounced", "user_unknown" },
  { "550 5.2.1 The email account that you tried to reach is disabled. "
    .. "https://support.google.com/mail/?p=DisabledUser - gsmtp", "bounced", "mailbox_disabled" },
  { "452 4.2.2 The email account that you tried to reach is over quota. Please direct the "
    .. "recipient to https://support.google.com/mail/?p=OverQuotaTemp - gsmtp", "deferred", "mailbox_full" },
  { "552 5.2.2 The email account that you tried to reach is over quota. "
    .. "https://support.google.com/mail/?p=OverQuotaPerm - gsmtp", "bounced", "mailbox_full" },
  { "450 4.2.1 The user you are trying to contact is receiving mail too quickly. Please resend "
    .. "your message at a later time.", "deferred", "rate_limited" },
  { "550 5.2.1 The user you are trying to contact is receiving mail at a rate that prevents "
    .. "additional messages from being delivered. https://support.google.com/mail/?p=ReceivingRatePerm",
    "bounced", "rate_limited" },
  { "421 4.7.0 [192.0.2.1] Our system has detected an unusual rate of unsolicited mail originating "
    .. "from your IP address. To protect our users from spam, mail sent from your IP address has "
    .. "been temporarily rate limited.", "deferred", "reputation" },
  { "550 5.7.1 [192.0.2.1] Our system has detected that this message is likely unsolicited mail. "
    .. "To reduce the amount of spam sent to Gmail, this message has been blocked.",
    "blocked", "spam_content" },
  { "550 5.7.1 [192.0.2.1 12] Our system has detected that this message is likely suspicious due "
    .. "to the very low reputation of the sending IP address.", "blocked", "reputation" },
  { "550 5.7.26 This mail has been blocked because the sender is unauthenticated. Gmail requires "
    .. "all senders to authenticate with either SPF or DKIM.", "blocked", "auth_failed" },
  { "550 5.7.26 Unauthenticated email from example.com is not accepted due to domain's DMARC "
    .. "policy.", "blocked", "auth_failed" },
  { "421 4.7.26 Your email has been rate limited because it is unauthenticated. Gmail requires "
    .. "all senders to authenticate with either SPF or DKIM.", "deferred", "auth_failed" },
  { "421 4.7.27 Your email has been rate limited because SPF authentication didn't pass for this "
    .. "message. Gmail requires all bulk email senders to authenticate with SPF.",
    "deferred", "auth_failed" },
  { "421 4.7.29 Your email has been rate limited because this message wasn't sent over a TLS "
    .. "connection. Gmail requires all bulk email senders to use TLS/SSL for SMTP connections.",
    "deferred", "tls_required" },
  { "421 4.7.30 Your email has been rate limited because DKIM authentication didn't pass for "
    .. "this message.", "deferred", "auth_failed" },
  { "421 4.7.32 Your email has been rate limited because the From: header (RFC5322) in this "
    .. "message isn't aligned with either the authenticated SPF or DKIM organizational domain.",
    "deferred", "auth_failed" },
  { "550 5.7.25 [192.0.2.1] The IP address sending this message does not have a PTR record "
    .. "setup, or the corresponding forward DNS entry does not point to the sending IP.",
    "blocked", "reverse_dns" },
  { "552 5.2.3 Your message exceeded Google's message size limits.", "bounced", "message_too_large" },
  { "550 5.7.1 This message is not RFC 5322 compliant. There are multiple Subject headers.",
    "bounced", "message_invalid" },
  { "550 5.7.1 [192.0.2.1 13] Messages with multiple addresses in From: header are not accepted.",
    "bounced", "message_invalid" },
  { "552 5.7.0 This message was blocked because its content presents a potential security issue.",
    "blocked", "virus_detected" },
  { "530 5.7.0 Must issue a STARTTLS command first.", "blocked", "tls_required" },
  { "535 5.7.8 Username and Password not accepted.", "blocked", "auth_required" },
  { "550 5.7.0 Mail relay denied [192.0.2.1].", "blocked", "relay_denied" },
  { "451 4.3.0 Mail server temporarily rejected message.", "deferred", "temporary_failure" },
  { "452 4.5.3 Your message has too many recipients.", "deferred", "too_many_recipients" },
  { "550 5.4.5 Daily sending quota exceeded.", "blocked", "rate_limited" },
  { "421 4.7.0 TLS required for RCPT domain, closing connection.", "deferred", "tls_required" },
  { "553 5.1.2 We weren't able to find the recipient domain.", "bounced", "domain_not_found" },
  { "421 4.4.5 Server busy, try again later.", "deferred", "temporary_failure" },
  { "550 5.7.1 The user or domain that you are sending to (or from) has a policy that prohibited "
    .. "the mail that you sent.", "blocked", "policy" },
  { "451 4.3.0 Multiple destination domains per transaction is unsupported. Please try again.",
    "deferred", "too_many_recipients" },

  -- Microsoft: Outlook.com, Exchange Online
  { "550 5.1.10 RESOLVER.ADR.RecipientNotFound; Recipient not found by SMTP address lookup",
    "bounced", "user_unknown" },
  { "550 5.4.1 Recipient address rejected: Access denied. AS(201806281) "
    .. "[DB5EUR03FT001.eop-EUR03.prod.protection.outlook.com]", "bounced", "user_unknown" },
  { "550 5.7.1 Unfortunately, messages from [192.0.2.1] weren't sent. Please contact your "
    .. "Internet service provider since part of their network is on our block list (S3150).",
    "blocked", "blocklisted" },
  { "550 5.7.606 Access denied, banned sending IP [192.0.2.1]. To request removal from this list "
    .. "please visit https://sender.office.com/", "blocked", "blocklisted" },
  { "451 4.7.650 The mail server [192.0.2.1] has been temporarily rate limited due to IP "
    .. "reputation.", "deferred", "reputation" },
  { "550 5.7.509 Access denied, sending domain [EXAMPLE.COM] does not pass DMARC verification "
    .. "and has a DMARC policy of reject.", "blocked", "auth_failed" },
  { "554 5.2.122 The recipient has exceeded their limit for the number of messages they can "
    .. "receive per hour.", "bounced", "rate_limited" },
  { "554 5.2.121 Cannot process the message because the sender has exceeded their limit for the "
    .. "number of messages they can send per hour.", "blocked", "rate_limited" },
  { "550 5.7.708 Service unavailable. Access denied, traffic not accepted from this IP.",
    "blocked", "reputation" },
  { "452 4.5.3 Too many recipients", "deferred", "too_many_recipients" },
  { "550 5.2.2 STOREDRV.Deliver: mailbox full.", "bounced", "mailbox_full" },
  { "554 5.4.14 Hop count exceeded - possible mail loop", "bounced", "routing_error" },
  { "550 5.7.133 RESOLVER.RST.SenderNotAuthenticatedForGroup; authentication required",
    "blocked", "policy" },
  { "451 4.7.500 Server busy. Please try again later from [192.0.2.1]. (S77714)",
    "deferred", "rate_limited" },
  { "550 5.5.0 Requested action not taken: mailbox unavailable.", "bounced", "user_unknown" },
  { "421 4.3.2 The maximum number of concurrent server connections has exceeded a limit, closing "
    .. "transmission channel", "deferred", "too_many_connections" },
  { "550 5.7.520 Access denied, Your organization does not allow external forwarding.",
    "blocked", "policy" },
  { "550 SC-001 (BAY004-MC1F41) Unfortunately, messages from 192.0.2.1 weren't sent. Please "
    .. "contact your Internet service provider. You can tell them that Hotmail does not relay "
    .. "dynamically-assigned IP ranges.", "blocked", "policy" },
  { "550 OU-002 (COL004-MC1F24) Unfortunately, messages from 192.0.2.1 weren't sent.",
    "blocked", "blocklisted" },
  { "530 5.7.57 Client was not authenticated to send anonymous mail during MAIL FROM",
    "blocked", "auth_required" },
  { "550 5.1.351 Remote server returned unknown recipient or mailbox unavailable", "bounced",
    "user_unknown" },

  -- Yahoo / AOL
  { "421 4.7.0 [TSS04] Messages from 192.0.2.1 temporarily deferred due to unexpected volume or "
    .. "user complaints - 4.16.55.1; see https://senders.yahooinc.com/error-codes",
    "deferred", "reputation" },
  { "421 4.7.0 [TSS09] All messages from 192.0.2.1 will be permanently deferred; Retrying will "
    .. "NOT succeed. See https://senders.yahooinc.com/error-codes", "deferred", "reputation" },
  { "553 5.7.1 [BL21] Connections will not be accepted from 192.0.2.1, because the ip is in "
    .. "Spamhaus's list; see https://senders.yahooinc.com/error-codes", "blocked", "blocklisted" },
  { "554 5.7.9 Message not accepted for policy reasons. See "
    .. "https://senders.yahooinc.com/error-codes", "blocked", "policy" },
  { "554 30 Sorry, your message to user@yahoo.com cannot be delivered. This mailbox is disabled "
    .. "(554.30).", "bounced", "mailbox_disabled" },
  { "552 1 Requested mail action aborted, mailbox not found", "bounced", "user_unknown" },
  { "554 delivery error: dd This user doesn't have a yahoo.com account (user@yahoo.com) [0] - "
    .. "mta1234.mail.gq1.yahoo.com", "bounced", "user_unknown" },
  { "421 Max message per connection reached, closing transmission channel",
    "deferred", "too_many_connections" },
  { "550 5.7.9 This mail has been blocked because the sender is unauthenticated. Yahoo requires "
    .. "all senders to authenticate with either SPF or DKIM.", "blocked", "auth_failed" },
  { "451 Message temporarily deferred due to unresolvable RFC.5321 from domain",
    "deferred", "sender_rejected" },
  { "554 delivery error: dd Sorry your message to user@aol.com cannot be delivered. This account "
    .. "has been disabled or discontinued [#102]. - mta1.mail.aol.com", "bounced", "mailbox_disabled" },

  -- Apple iCloud
  { "550 5.1.1 <user@icloud.com>: user does not exist", "bounced", "user_unknown" },
  { "552 5.2.2 <user@icloud.com>: user is over quota", "bounced", "mailbox_full" },
  { "554 5.7.1 [CS01] Message rejected due to local policy. Please visit "
    .. "https://support.apple.com/en-us/HT204137", "blocked", "policy" },
  { "550 5.7.1 [HM08] Message rejected due to local policy. Please visit "
    .. "https://support.apple.com/en-us/HT204137", "blocked", "policy" },
  { "550 5.1.1 <user@icloud.com>: inactive email address", "bounced", "user_unknown" },
  { "421 4.7.0 mx-in.icloud.com Error: too many connections from 192.0.2.1",
    "deferred", "too_many_connections" },

  -- Comcast, Cox
  { "554 resimta-ch2-18v.sys.comcast.net resimta-ch2-18v.sys.comcast.net 192.0.2.1 found on one "
    .. "or more DNSBLs, see http://postmaster.comcast.net/smtp-error-codes.php#BL000001",
    "blocked", "blocklisted" },
  { "554 resimta-po-14v.sys.comcast.net comcast 192.0.2.1 Comcast requires that all mail servers "
    .. "must have a PTR record with a valid Reverse DNS entry. Currently your mail server does not "
    .. "fill that requirement. For more information, refer to: "
    .. "http://postmaster.comcast.net/smtp-error-codes.php#BL000000", "blocked", "reverse_dns" },
  { "550 5.1.1 <user@comcast.net> Not our Customer", "bounced", "user_unknown" },
  { "421 4.2.0 192.0.2.1 comcast Too many sessions opened, see "
    .. "https://postmaster.comcast.net/smtp-error-codes.php#RL000001", "deferred", "too_many_connections" },
  { "550 5.1.0 <sender@example.com> sender rejected. Please see understanding SMTP error codes "
    .. "section at http://postmaster.comcast.net", "blocked", "sender_rejected" },
  { "554 cox.net Connection refused - 192.0.2.1 - AUP#CXBL", "blocked", "blocklisted" },
  { "421 cox.net Too many connections - AUP#CXCNCT", "deferred", "too_many_connections" },

  -- Mimecast
  { "451 Internal resource temporarily unavailable - https://community.mimecast.com/docs/DOC-1369#451",
    "deferred", "greylisted" },
  { "550 Rejected by header based Anti-Spoofing policy: user@example.com - "
    .. "https://community.mimecast.com/docs/DOC-1369#550", "blocked", "policy" },
  { "550 Invalid Recipient - https://community.mimecast.com/docs/DOC-1369#550",
    "bounced", "user_unknown" },
  { "554 Email rejected due to security policies - https://community.mimecast.com/docs/DOC-1369#554",
    "blocked", "policy" },
  { "550 Envelope blocked - User Entry - https://community.mimecast.com/docs/DOC-1369#550",
    "blocked", "policy" },
  { "550 Administrative prohibition - envelope blocked - "
    .. "https://community.mimecast.com/docs/DOC-1369#550", "blocked", "policy" },
  { "421 Too many concurrent SMTP connections from this IP address; please try again later - "
    .. "https://community.mimecast.com/docs/DOC-1369#421", "deferred", "too_many_connections" },
  { "550 Local CT IP Reputation - (reject) https://community.mimecast.com/docs/DOC-1369#550",
    "blocked", "reputation" },
  { "host service222.mimecast.com[91.220.42.51] said: 554 email rejected due to security policies "
    .. "- MCSpamSignature.sa.2.2 (in reply to end of DATA command)", "blocked", "spam_content" },

  -- Proofpoint
  { "554 5.7.0 Blocked - see https://ipcheck.proofpoint.com/?ip=192.0.2.1", "blocked", "blocklisted" },
  { "550 5.7.1 Blocked - see https://support.proofpoint.com/dnsbl-lookup.cgi?ip=192.0.2.1",
    "blocked", "blocklisted" },
  { "553 5.1.8 <sender@example.com>: Sender address rejected: Domain not found",
    "blocked", "sender_rejected" },

  -- Greylisting
  { "450 4.2.0 <user@example.com>: Recipient address rejected: Greylisted, see "
    .. "http://postgrey.schweikert.ch/help/example.com.html", "deferred", "greylisted" },
  { "451 4.7.1 Greylisting in action, please come back later", "deferred", "greylisted" },
  { "451 4.7.1 Please try again later (greylisted)", "deferred", "greylisted" },
  { "450 4.7.1 Client host rejected: cannot find your hostname, [192.0.2.1]",
    "deferred", "reverse_dns" },
  { "451 4.7.1 Service unavailable - try again later", "deferred", "temporary_failure" },

  -- Spamhaus and other blocklists
  { "554 5.7.1 Service unavailable; Client host [192.0.2.1] blocked using zen.spamhaus.org; "
    .. "https://www.spamhaus.org/query/ip/192.0.2.1", "blocked", "blocklisted" },
  { "550 5.7.1 Client host [192.0.2.1] blocked using bl.spamcop.net; Blocked - see "
    .. "https://www.spamcop.net/bl.shtml?192.0.2.1", "blocked", "blocklisted" },
  { "554 Service unavailable; Client host [192.0.2.1] blocked using b.barracudacentral.org; "
    .. "http://www.barracudanetworks.com/reputation/?pr=1&ip=192.0.2.1", "blocked", "blocklisted" },
  { "550 5.7.1 Mail from 192.0.2.1 refused: listed on dnsbl.sorbs.net", "blocked", "blocklisted" },
  { "421 4.7.1 Service unavailable; client [192.0.2.1] blocked using dnsbl-1.uceprotect.net",
    "deferred", "blocklisted" },
  { "550 5.7.1 Message rejected because of URL blacklisted in multi.uribl.com",
    "blocked", "spam_content" },
  { "554 5.7.1 Rejected: 192.0.2.1 listed at https://www.abuseat.org/lookup.cgi?ip=192.0.2.1",
    "blocked", "blocklisted" },
  { "553 http://www.spamhaus.org/query/bl?ip=192.0.2.222", "blocked", "blocklisted" },

  -- Postfix, Exim, other MTAs and hosts
  { "550 5.1.1 <user@example.com>: Recipient address rejected: User unknown in virtual mailbox table",
    "bounced", "user_unknown" },
  { "554 5.7.1 <user@example.com>: Relay access denied", "blocked", "relay_denied" },
  { "450 4.1.8 <sender@example.com>: Sender address rejected: Domain not found",
    "deferred", "sender_rejected" },
  { "504 5.5.2 <localhost>: Helo command rejected: need fully-qualified hostname",
    "blocked", "sender_rejected" },
  { "552 5.3.4 Message size exceeds fixed limit", "bounced", "message_too_large" },
  { "550-Verification failed for <sender@example.com>\r\n550-Unrouteable address\r\n"
    .. "550 Sender verify failed\r\n", "blocked", "sender_rejected" },
  { "550 5.7.23 The message was rejected because of Sender Policy Framework violation",
    "blocked", "auth_failed" },
  { "554 5.7.1 <unknown[192.0.2.1]>: Client host rejected: Access denied", "blocked", "policy" },
  { "421 4.3.2 Service shutting down, closing transmission channel", "deferred", "temporary_failure" },
  { "554 5.6.0 Message contains invalid header", "bounced", "message_invalid" },
  { "452 4.3.1 Insufficient system storage", "deferred", "temporary_failure" },
  { "550 5.7.1 Message rejected as spam by Content Filtering.", "blocked", "spam_content" },
  { "554 5.7.1 The message was rejected because it contains prohibited virus or spam content",
    "blocked", "virus_detected" },
  { "530 5.7.0 Authentication required", "blocked", "auth_required" },
  { "454 4.7.0 TLS not available due to local problem", "deferred", "tls_required" },
  { "550 5.4.6 Routing loop detected", "bounced", "routing_error" },
  { "421 4.4.2 mx.example.com Error: timeout exceeded", "deferred", "network_error" },
  { "554 5.3.0 Internal error", "bounced", "temporary_failure" },
  { "550 Requested action not taken: mailbox unavailable Reject due to policy restrictions. For "
    .. "explanation visit http://postmaster.gmx.com/en/error-messages", "blocked", "policy" },
  { "550 <user@example.com> user@example.com has sent to too many recipients this hour. IB607",
    "blocked", "rate_limited" },
  { "550 Mailbox unavailable or access denied [MQbW5SC0ouoZ7Hm0]", "bounced", "rate_limited" },
  { "550 Ip frequency limited [MHnG1RhnW8fI]", "blocked", "rate_limited" },
  { "550 DMARC check failed. http://service.mail.qq.com/cgi-bin/help?subtype=1&&no=1001508&&id=16.",
    "blocked", "auth_failed" },
  { "550 5.7.1 Email rejected per DMARC policy for example.org", "blocked", "auth_failed" },
  { "550 sorry, no mailbox here by that name (#5.1.1 - chkusr)", "bounced", "user_unknown" },
  { "552 sorry, mailbox user@example.org is over quota temporarily (#5.1.1)",
    "bounced", "mailbox_full" },
  { "525 5.7.13 Disabled recipient address", "bounced", "mailbox_disabled" },
  { "554 5.4.6 Too many hops", "bounced", "routing_error" },
  { "501 5.1.8 Sender address rejected", "blocked", "sender_rejected" },
  { "550 5.7.1 IP address blacklisted by recipient", "blocked", "blocklisted" },
  { "521 5.3.2 System not accepting network messages", "bounced", "domain_not_found" },
  { "556 5.1.10 Recipient address has null MX", "bounced", "domain_not_found" },
  { "500 5.5.1 Command unrecognized", "bounced", "protocol_error" },
  { "503 5.5.1 Error: need RCPT command", "bounced", "protocol_error" },
}
