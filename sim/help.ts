// `npm run sim -- --help`: every switch of the simulated vLLM, in one place.
export const SIM_HELP = `The simulated vLLM: vLLM's OpenAI-compatible server, as recorded (test/fixtures/cassettes),
for the tests, the demo and the benchmarks. It answers /v1/responses (streamed or not),
/v1/chat/completions, /v1/completions, /v1/embeddings, /v1/models and /health.

Usage:
  npm run sim -- [options]
  tsx sim/cli.ts serve <model> --port N [vLLM flags]   stand in for \`vllm serve\`

Options:
  --port N              port to listen on (default 8000; 0 picks a free one)
  --host ADDRESS        address to listen on (default 127.0.0.1)
  --model NAME          the model it reports (default sim-model)
  --api-key KEY         require "Authorization: Bearer KEY" on /v1/*, like vllm serve --api-key
  --chunk-delay-ms N    wait N ms between streamed events (default 0)
  --prefill-us-per-token N
                        before answering /v1/responses, wait N µs per input token not
                        in the prefix cache (default 0; GET /metrics counts its hits)
  --coalesce            write each event in one chunk (vLLM writes three)
  --fast                prepared answers, bodies not parsed (benchmarks); of the x-sim
                        switches only deltas=N and delay-headers=N apply
  --chat-only           a server with Chat Completions only (/v1/responses: 404), as
                        llama.cpp, Ollama, SGLang, TGI and LM Studio are
  --chat-dialect NAME   the chat format written: vllm (default), llama.cpp, ollama, sglang
                        (reasoning field, tool-call chunking, usage placement)
  --no-record           keep no record of requests (long runs)
  -h, --help            this text

Per request, the x-sim header (key=value;key=value) scripts the answer:
  deltas=N              exactly N text deltas ("t0 t1 ...")
  slow=MS               MS between streamed events
  reasoning             a reasoning item first (reasoning=0: none)
  tool=NAME             call this declared function tool
  dialect=NAME          this chat answer's format (vllm, llama.cpp, ollama, sglang)
  status=CODE           answer with this HTTP status and vLLM's error body
  delay-headers=MS      wait MS before the response headers
  hang-after-headers    send headers, then nothing, ever
  reset-before-headers  reset the connection instead of answering
  reset-after=N         cut the connection after N events
  truncate-after=N      end the connection in the middle of event N
  end-mid-event-after=N end the response (cleanly) in the middle of event N
  stall-after=N         stop sending after N events, connection open
  garbage               200 with a non-JSON body
  wrong-content-type    a stream sent as text/plain
  no-body               a status line and nothing else
  quirk=A,B             vLLM's stream quirks: unannounced-reasoning-part, fc-args-mismatch,
                        seq-out-of-order, seq-duplicate, no-terminal, end-after-item-added,
                        content-index-not-reset, text-done-extends, text-done-differs,
                        error-event, vllm-done; chat-error-chunk (a chat stream
                        that ends with an error chunk instead of [DONE])

Chat requests are answered by the same model (messages read as input items), and refused
as templates refuse them: a system message not first, a developer message, a tool message
answering no call.

The model's answer follows the last user message: it calls the declared tools the text names,
in rounds separated by "then" ("use add and echo, then multiply"), and answers once every
round is done. A tool's string argument is the text between a line "~~~<tool>" and a line
"~~~" when the message has one (a patch, a command), else the message's start. Chat
templates' rules apply: a system message only first, no developer message (vLLM's 400).

As \`vllm serve\` (for the tests of responses-gateway serve), these variables script its life:
  SIM_STARTUP_DELAY_MS  unhealthy (GET /health 503) for that long
  SIM_UNHEALTHY=1       never healthy
  SIM_EXIT_AFTER_MS     exit after that long, with SIM_EXIT_CODE (default 3)
  SIM_ARGS_FILE         write its argv there, as JSON
  SIM_IGNORE_SIGTERM=1  only SIGKILL stops it
  SIM_SIGTERM_FILE      written when SIGTERM arrives
  SIM_EXIT_CODE_ON_SIGUSR2  exit with that code on SIGUSR2
`;
