// Resolves `./Player` to `./Player.js`, as a bundler does: the generated
// classes import each other without an extension, which Node's own ESM
// resolution refuses. Registered by join.mjs's `--import`.
export async function resolve(specifier, context, next) {
  try {
    return await next(specifier, context);
  } catch (error) {
    if (specifier.startsWith(".") && !specifier.endsWith(".js")) {
      return next(`${specifier}.js`, context);
    }
    throw error;
  }
}
