# syntax=docker/dockerfile:1
FROM node:22-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund --ignore-scripts
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npx tsc -p tsconfig.build.json && npm prune --omit=dev --ignore-scripts

FROM node:22-slim
ENV NODE_ENV=production \
    WMS_CONFIG=/config/wiki-matrix-sso.yaml
WORKDIR /app
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY package.json ./
COPY migrations ./migrations
COPY views ./views
COPY i18n ./i18n
COPY config ./config
RUN mkdir -p /data /config && chown node:node /data
USER node
VOLUME ["/config", "/data"]
EXPOSE 8080
# The sample's data_dir is relative; in the image, PGlite data belongs in the /data volume.
WORKDIR /data
HEALTHCHECK --interval=30s --timeout=3s --start-period=20s \
  CMD node -e "fetch('http://127.0.0.1:8080/health').then(r => process.exit(r.ok ? 0 : 1), () => process.exit(1))"
ENTRYPOINT ["node", "/app/dist/cli.js"]
CMD ["serve"]
