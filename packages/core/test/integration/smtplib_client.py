"""Drive Python's smtplib against a Mailgate gateway for the integration tests.

Usage: python3 smtplib_client.py '<json request>'

The request says how to connect (plain, STARTTLS, SMTP_SSL), whether to log in
(and with which mechanism), and what to send (raw bytes with sendmail, with its
mail_options and rcpt_options, or an EmailMessage with send_message). One JSON
object is printed on stdout with what happened; the exit status is 0 on success,
3 for an SMTP error reply, 4 when every recipient was refused, 5 for anything else.
"""
import base64
import json
import smtplib
import ssl
import sys
from email.message import EmailMessage
from email import policy


def refused(result: dict) -> dict:
    """sendmail's {recipient: (code, bytes)} as JSON-friendly {recipient: [code, text]}."""
    return {k: [c, m.decode()] for k, (c, m) in result.items()}


def main() -> int:
    req = json.loads(sys.argv[1])
    host, port = req["host"], req["port"]
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    out: dict = {}
    smtp = None
    try:
        if req.get("ssl"):
            smtp = smtplib.SMTP_SSL(host, port, context=ctx, timeout=10)
        else:
            smtp = smtplib.SMTP(host, port, timeout=10)
        if req.get("helo"):
            code, text = smtp.helo("py.test")
            out["helo"] = [code, text.decode()]
        else:
            code, text = smtp.ehlo("py.test")
            out["ehlo"] = [code, text.decode()]
            out["features"] = sorted(smtp.esmtp_features)
        if req.get("starttls"):
            code, text = smtp.starttls(context=ctx)
            out["starttls"] = [code, text.decode()]
            code, text = smtp.ehlo("py.test")
            out["features_tls"] = sorted(smtp.esmtp_features)
        if "login" in req:
            user, password = req["login"]["user"], req["login"]["password"]
            mechanism = req["login"].get("mechanism")
            if mechanism:
                # smtplib.login() picks the mechanism itself; force one as a client configured so would.
                smtp.user, smtp.password = user, password
                auth = {"PLAIN": smtp.auth_plain, "LOGIN": smtp.auth_login}[mechanism]
                code, text = smtp.auth(mechanism, auth, initial_response_ok=req["login"].get("initial", True))
            else:
                code, text = smtp.login(user, password)
            out["login"] = [code, text.decode()]
        if "raw_b64" in req:
            raw = base64.b64decode(req["raw_b64"])
            out["refused"] = refused(smtp.sendmail(req["from"], req["to"], raw, mail_options=req.get("mail_options", []), rcpt_options=req.get("rcpt_options", [])))
        elif "email" in req:
            e = req["email"]
            msg = EmailMessage(policy=policy.SMTPUTF8 if e.get("utf8") else policy.SMTP)
            msg["From"] = e["from"]
            msg["To"] = ", ".join(e["to"])
            msg["Subject"] = e["subject"]
            msg.set_content(e["text"])
            for a in e.get("attachments", []):
                msg.add_attachment(base64.b64decode(a["b64"]), maintype="application", subtype="octet-stream", filename=a["filename"])
            # The bytes smtplib will send (same serialisation as send_message uses).
            out["sent_b64"] = base64.b64encode(msg.as_bytes(policy=msg.policy.clone(linesep="\r\n", utf8=bool(e.get("utf8"))))).decode()
            out["refused"] = refused(smtp.send_message(msg, mail_options=req.get("mail_options", [])))
        smtp.quit()
        print(json.dumps(out, ensure_ascii=False))
        return 0
    except smtplib.SMTPRecipientsRefused as err:
        out.update(error=type(err).__name__, recipients={k: [c, m.decode()] for k, (c, m) in err.recipients.items()})
        print(json.dumps(out, ensure_ascii=False))
        return 4
    except smtplib.SMTPResponseException as err:
        message = err.smtp_error.decode() if isinstance(err.smtp_error, bytes) else str(err.smtp_error)
        out.update(error=type(err).__name__, code=err.smtp_code, message=message)
        print(json.dumps(out, ensure_ascii=False))
        return 3
    except Exception as err:  # noqa: BLE001 - report anything to the test
        out.update(error=type(err).__name__, message=str(err))
        print(json.dumps(out, ensure_ascii=False))
        return 5
    finally:
        if smtp is not None:
            try:
                smtp.close()
            except Exception:  # noqa: BLE001
                pass


if __name__ == "__main__":
    sys.exit(main())
