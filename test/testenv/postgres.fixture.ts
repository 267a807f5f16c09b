// Child process for the SIGINT teardown test: starts a database, prints where
// it is, then waits to be interrupted.
import path from "node:path";
import { startPostgres } from "./postgres.js";

const db = await startPostgres();
console.log(`PORT ${db.port} ROOT ${path.dirname(db.dataDir)}`);
setInterval(() => undefined, 1000);
