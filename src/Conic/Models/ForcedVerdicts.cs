namespace Conic.Models;

/// <summary>
/// Verdicts of the arithmetic check forced by <c>CONIC_ARITHMETIC</c> (comma-separated), so that the paths other CPUs
/// take run, and are tested, on any machine:
/// <c>reject-bf16</c> rejects bfloat16 (as AMD Zen 5 does at every width), <c>reject-onednn</c> rejects float32 oneDNN
/// at the CPU's full instruction set (Zen 5 at width 4: the process reruns with oneDNN held to AVX2, where it passes),
/// <c>reject-onednn-avx2</c> rejects it under that cap too (only the native kernels are left).
/// </summary>
public static class ForcedVerdicts
{
    /// <summary>The environment variable that forces verdicts of the arithmetic check, comma-separated (tests and CI use it to take every fallback).</summary>
    public const string Variable = "CONIC_ARITHMETIC";
    /// <summary>The verdicts <see cref="Variable"/> may force: bfloat16 rejected, oneDNN rejected, oneDNN capped at AVX2 rejected.</summary>
    public const string RejectBFloat16 = "reject-bf16", RejectOneDnn = "reject-onednn", RejectCappedOneDnn = "reject-onednn-avx2";
    static readonly string[] Known = [RejectBFloat16, RejectOneDnn, RejectCappedOneDnn];

    /// <summary>The verdicts asked for; an unknown one is an error naming it.</summary>
    public static IReadOnlySet<string> Requested()
    {
        var words = (Environment.GetEnvironmentVariable(Variable) ?? "")
            .Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).ToHashSet(StringComparer.Ordinal);
        if (words.FirstOrDefault(w => !Known.Contains(w)) is string unknown)
            throw new ConicException($"{Variable}={Environment.GetEnvironmentVariable(Variable)}: unknown verdict '{unknown}'; give any of {string.Join(", ", Known)}");
        return words;
    }

    /// <summary>Why <paramref name="arithmetic"/> is rejected without being measured, or null when it is to be measured.</summary>
    public static string? Rejection(ConvolutionArithmetic arithmetic)
    {
        var requested = Requested();
        string? verdict = arithmetic switch
        {
            { BFloat16: true } => RejectBFloat16,
            { OneDnn: true } => ConvolutionArithmetic.OneDnnIsaCap == null ? RejectOneDnn : RejectCappedOneDnn,
            _ => null,
        };
        return verdict != null && requested.Contains(verdict) ? $"{Variable}={verdict}" : null;
    }
}
