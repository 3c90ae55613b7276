"""The harness above the services: it builds and drives them (the demo, the in-process and
multi-process pipelines, the review-desk launcher, the benchmarks, the `biostream-dev` command).
Nothing in libs/ or services/ imports it."""
