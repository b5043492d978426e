// Reads {secrets: [...], headers: {...}, body: "..."} on stdin and verifies the delivery with the
// reference Standard Webhooks library, once per secret. Prints a JSON line: which secrets verified.
import { Webhook } from "standardwebhooks";

let input = "";
for await (const chunk of process.stdin) input += chunk;
const { secrets, headers, body } = JSON.parse(input);
const results = secrets.map((secret) => {
  try {
    new Webhook(secret).verify(body, headers);
    return { secret: secret.slice(0, 10), ok: true };
  } catch (error) {
    return { secret: secret.slice(0, 10), ok: false, error: String(error.message ?? error) };
  }
});
console.log(JSON.stringify(results));
