namespace Conic;

/// <summary>
/// A problem with the user's input (a file, a folder or an option). The message is one line that names the
/// file or option and says what is wrong; the CLI prints it without a stack trace.
/// </summary>
public sealed class ConicException(string message) : Exception(message);
