using Conic.Runtime;

namespace Conic.Models;

/// <summary>Arithmetic of the backbone's convolutions in training; Auto lets the arithmetic check choose (bfloat16 where it is right and faster).</summary>
public enum Precision
{
    /// <summary>bfloat16 where the CPU has it and the arithmetic check finds it right, else float32.</summary>
    Auto,
    /// <summary>float32 convolutions.</summary>
    Float32,
    /// <summary>bfloat16 convolutions (float32 weights, gradients and accumulation).</summary>
    BFloat16,
}

/// <summary>Which CPU convolution kernels run: Auto lets the arithmetic check choose; OneDnn is libtorch's default; Native turns oneDNN off (im2col and BLAS).</summary>
public enum ConvolutionKernels
{
    /// <summary>oneDNN where the arithmetic check finds it right, else libtorch's native kernels.</summary>
    Auto,
    /// <summary>oneDNN's kernels.</summary>
    OneDnn,
    /// <summary>libtorch's own im2col and BLAS kernels, oneDNN off.</summary>
    Native,
}

/// <summary>One way of computing the backbone's convolutions: bfloat16 or float32 inputs, oneDNN's kernels or libtorch's own.</summary>
public sealed record ConvolutionArithmetic(bool BFloat16, bool OneDnn)
{
    /// <summary>bfloat16 inputs through oneDNN's kernels (accumulating in float32).</summary>
    public static readonly ConvolutionArithmetic BFloat16OneDnn = new(true, true);
    /// <summary>float32 through oneDNN's kernels, libtorch's default on the CPU.</summary>
    public static readonly ConvolutionArithmetic Float32OneDnn = new(false, true);
    /// <summary>Float32 through libtorch's im2col-and-BLAS convolutions: slower, and independent of oneDNN's kernels.</summary>
    public static readonly ConvolutionArithmetic Float32Native = new(false, false);

    /// <summary>Makes <paramref name="backbones"/> compute this way. oneDNN is switched process-wide (libtorch has one switch).</summary>
    public void Apply(IEnumerable<Backbone> backbones)
    {
        TorchRuntime.SetOneDnn(OneDnn);
        foreach (var backbone in backbones) backbone.BFloat16Compute = BFloat16;
    }

    /// <summary>The arithmetic in words, with oneDNN's instruction-set cap when there is one.</summary>
    public override string ToString() => (BFloat16, OneDnn) switch
    {
        (true, true) => $"bfloat16 convolutions (oneDNN{IsaCap})",
        (true, false) => "bfloat16 convolutions (native kernels)",
        (false, true) => $"float32 convolutions (oneDNN{IsaCap})",
        _ => "float32 convolutions (native kernels, oneDNN off)",
    };

    static string IsaCap => OneDnnIsaCap is string isa ? $", instructions capped at {isa}" : "";

    /// <summary>The instruction set oneDNN is held to by ONEDNN_MAX_CPU_ISA (read by oneDNN once, at its first use), or null.</summary>
    public static string? OneDnnIsaCap => Environment.GetEnvironmentVariable(IsaCapVariable) is { Length: > 0 } isa ? isa : null;

    /// <summary>The environment variable that holds oneDNN to an instruction set (read once, at oneDNN's first use).</summary>
    public const string IsaCapVariable = "ONEDNN_MAX_CPU_ISA";
}
