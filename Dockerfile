# syntax=docker/dockerfile:1
#
# One image, two static binaries: /usr/local/bin/batch (the CronJob, the
# migration and one-off Jobs) and /usr/local/bin/serve (the Deployment). The
# manifests in k8s/ pick the binary with `command:`, so there is no ENTRYPOINT
# to override and no shell in the runtime image.
#
# Build: make image (docker build -t setlist:$(VERSION) --build-arg VERSION=...)
# On minikube: minikube image build -t setlist:dev .   (see docs/deploy.md)

# ---- build stage -----------------------------------------------------------
# Pinned minor version (never `latest`): the toolchain must match go.mod's
# `go` line. BUILDPLATFORM lets a multi-arch build compile natively and cross
# compile with GOARCH instead of emulating the target.
FROM --platform=$BUILDPLATFORM golang:1.26-bookworm AS build
WORKDIR /src

# Modules first, in their own layer, with the module and build caches mounted
# so a code-only change neither re-downloads nor recompiles dependencies.
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod \
    go mod download

COPY . .
ARG VERSION=dev
ARG TARGETOS=linux
ARG TARGETARCH=amd64
# As `make build`: the ALS kernels' AVX2/FMA path (Go's experimental simd
# package) on amd64; other architectures build the portable kernels.
ARG GOEXPERIMENT=simd
# CGO_ENABLED=0: fully static binaries that run on distroless/static (no libc).
# -trimpath: no build-machine paths in the binaries (reproducible, no leaks).
RUN --mount=type=cache,target=/go/pkg/mod \
    --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 GOOS=$TARGETOS GOARCH=$TARGETARCH GOEXPERIMENT=$GOEXPERIMENT \
    go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" -o /out/batch ./batch && \
    CGO_ENABLED=0 GOOS=$TARGETOS GOARCH=$TARGETARCH GOEXPERIMENT=$GOEXPERIMENT \
    go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" -o /out/serve ./serve

# ---- runtime stage ---------------------------------------------------------
# distroless static, nonroot variant: CA certificates, /etc/passwd with the
# nonroot user (65532), tzdata, and nothing else (no shell, no package manager).
FROM gcr.io/distroless/static-debian12:nonroot
ARG VERSION=dev
LABEL org.opencontainers.image.title="setlist" \
      org.opencontainers.image.description="setlist batch and serve binaries" \
      org.opencontainers.image.source="https://github.com/setlist/setlist" \
      org.opencontainers.image.version="${VERSION}"
COPY --from=build /out/batch /usr/local/bin/batch
COPY --from=build /out/serve /usr/local/bin/serve
# The committed sample, so a fresh cluster can be filled with a one-off Job
# (k8s/jobs/import-sample.yaml) without copying files into a pod.
COPY data/sample.csv.gz /usr/share/setlist/sample.csv.gz
# Numeric, so Kubernetes' runAsNonRoot can verify it without /etc/passwd.
USER 65532:65532
EXPOSE 8080
CMD ["/usr/local/bin/serve"]
