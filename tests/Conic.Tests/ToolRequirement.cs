namespace Conic.Tests;

/// <summary>Facts that need a tool of the machine skip where it is missing, with the reason — except in CI.</summary>
static class ToolRequirement
{
    /// <summary>
    /// <paramref name="missing"/> as a skip reason outside CI; null in CI (CI set), where .ci/run installs every tool
    /// the tests need and a missing one must fail the test rather than pass for a skip.
    /// </summary>
    public static string? SkipReason(string? missing) => Environment.GetEnvironmentVariable("CI") == null ? missing : null;
}
