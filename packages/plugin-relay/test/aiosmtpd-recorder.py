"""aiosmtpd receiver for the relay tests: prints one JSON line per message."""
import asyncio, base64, json, sys
from aiosmtpd.controller import Controller


class Recorder:
    async def handle_DATA(self, server, session, envelope):
        print(json.dumps({
            "from": envelope.mail_from,
            "to": envelope.rcpt_tos,
            "mail_options": envelope.mail_options,
            "rcpt_options": envelope.rcpt_options,
            "data": base64.b64encode(envelope.original_content).decode(),
        }), flush=True)
        return "250 2.0.0 Recorded"


async def main(port):
    controller = Controller(Recorder(), hostname="127.0.0.1", port=port, enable_SMTPUTF8=True, decode_data=False)
    controller.start()
    print("READY", flush=True)
    await asyncio.Event().wait()


asyncio.run(main(int(sys.argv[1])))
