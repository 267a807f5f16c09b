// The notification auth backend: after the password is right, a push is
// sent and the bind succeeds only if the endpoint answers 200 with
// {"action":"approve"}. Deliberately no timeout (as in the real gateway): a
// silent endpoint hangs the bind.
import http from "node:http";
import https from "node:https";

export function askApproval(url: string, username: string): Promise<boolean> {
  const body = JSON.stringify({
    username,
    title: "LDAP login request",
    body: `Approve the login of ${username}?`,
    actions: [
      { action: "approve", title: "Approve" },
      { action: "reject", title: "Reject" },
    ],
  });
  const target = new URL(url);
  const mod = target.protocol === "https:" ? https : http;
  return new Promise((resolve) => {
    const req = mod.request(
      target,
      {
        method: "POST",
        headers: { "content-type": "application/json", "content-length": Buffer.byteLength(body) },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () => {
          if (res.statusCode !== 200) return resolve(false);
          try {
            const parsed = JSON.parse(Buffer.concat(chunks).toString()) as { action?: unknown };
            resolve(parsed.action === "approve");
          } catch {
            resolve(false);
          }
        });
        res.on("error", () => resolve(false));
      },
    );
    req.on("error", () => resolve(false));
    req.end(body);
  });
}
