// Loaded into every test file's process (scripts/test.mjs). Each file runs in a child
// that reports to the runner over a pipe, and with --test-force-exit a child can exit with
// its last reports still queued in that pipe (nodejs/node#64833): the runner then counts
// fewer tests and still passes, and a late failure loses its name and error. On one
// Node 24 run here 3 tests went unreported. A blocking pipe is written before the exit:
// six files of 40 tests, five runs, 228–232 of 240 reported on Node 24 and 236–240 on
// Node 20 without this, 240 every time with it.
for (const stream of [process.stdout, process.stderr]) stream._handle?.setBlocking?.(true);
