FROM node:20-bookworm-slim
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY . .
# The default model pack comes from the npm registry at build time; containers then run offline.
RUN npm run setup
# Compiled once here: every process runs dist/, and `npm run api|worker` then finds the build up to date.
RUN npm run build
# DATA_DIR holds only this container's staging of uploads in progress: blobs go to BLOB_URL's store.
ENV DATA_DIR=/data MODELS_DIR=/app/data/models
CMD ["npm", "run", "api"]
