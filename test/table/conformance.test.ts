/** Runs the shared conformance suite against static, file, db, sqlite and proc backends. */
import { conformance } from './conformance.js';
import { MAKERS } from './helpers.js';

for (const [name, make] of Object.entries(MAKERS)) conformance(name, make);
