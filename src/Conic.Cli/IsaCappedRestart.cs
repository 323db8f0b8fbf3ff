using System.Diagnostics;
using Conic.Models;

/// <summary>Reruns this command line in a child process with oneDNN held to AVX2, sharing the console, and returns its exit code.</summary>
static class IsaCappedRestart
{
    public static int Run(string[] args)
    {
        var (program, arguments) = ThisProgram.With(args);
        var start = new ProcessStartInfo(program) { UseShellExecute = false };
        foreach (string argument in arguments) start.ArgumentList.Add(argument);
        start.Environment[ConvolutionArithmetic.IsaCapVariable] = "AVX2";
        ParentWatch.WatchedBy(start);
        using var child = Process.Start(start)!;
        child.WaitForExit();
        return child.ExitCode;
    }
}
