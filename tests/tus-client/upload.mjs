// Uploads a file to Fundament with tus-js-client, breaks the upload off after the first chunk,
// then resumes it from the server's offset with a new client (as a browser does after a reload).
// Usage: node upload.mjs <endpoint> <bearer-token> <file> <title> <tags>
// Prints one JSON line: {"url", "pausedAt", "resumedFrom", "finished", "mediaId"}.
import * as tus from "tus-js-client";
import fs from "node:fs";

const [endpoint, token, file, title, tags] = process.argv.slice(2);
const size = fs.statSync(file).size;
const chunkSize = Math.max(64 * 1024, Math.ceil(size / 4));
const headers = { Authorization: `Bearer ${token}` };
const metadata = { filename: file.split("/").pop(), title, tags };

function start(options) {
  return new Promise((resolve, reject) => {
    const upload = new tus.Upload(fs.createReadStream(file), {
      endpoint, headers, metadata, chunkSize, uploadSize: size, retryDelays: [0, 200, 500],
      onError: reject,
      ...options(resolve, () => upload),
    });
    upload.start();
  });
}

// First session: stop after the first chunk is acknowledged.
const first = await start((resolve, self) => ({
  onChunkComplete: (_chunk, accepted) => {
    if (accepted < size) {
      self().abort(false).then(() => resolve({ url: self().url, accepted }));
    }
  },
  onSuccess: () => resolve({ url: self().url, accepted: size }),
}));

// Second session: a new client resumes from the URL; tus-js-client HEADs it for the offset.
let resumedFrom = null;
let mediaId = null;
await start((resolve, self) => ({
  uploadUrl: first.url,
  onProgress: (sent) => { if (resumedFrom === null) resumedFrom = sent; },
  onAfterResponse: (_req, res) => { mediaId = res.getHeader("Media-Id") || mediaId; },
  onSuccess: () => resolve(),
}));

console.log(JSON.stringify({ url: first.url, pausedAt: first.accepted, resumedFrom, finished: true, mediaId }));
