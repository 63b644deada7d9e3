# One image for both services; docker-compose.yml picks the service by command.
FROM node:20-bookworm-slim AS build
WORKDIR /app
COPY . .
# npm ci runs `prepare` (tsc -b); then drop the dev tools from node_modules.
RUN npm ci --no-audit --no-fund && npm prune --omit=dev

FROM node:20-bookworm-slim
WORKDIR /app
ENV NODE_ENV=production HOST=0.0.0.0
COPY --from=build --chown=node:node /app /app
USER node
EXPOSE 9000 9001
CMD ["node", "services/chat-server/dist/server.js"]
