/**
 * Imported first by the benchmarks: the AWS SDK warns once per process that its next releases
 * need Node 22 (the project pins a version that supports Node 20, see FACTS.md). The variable
 * must be set before the SDK's modules are evaluated, hence a module of its own.
 */
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
