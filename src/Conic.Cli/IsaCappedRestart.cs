using System.Diagnostics;
using Conic.Models;

/// <summary>Reruns this command line in a child process with oneDNN held to AVX2, sharing the console, and returns its exit code.</summary>
static class IsaCappedRestart
{
    public static int Run(string[] args)
    {
        // Started as `dotnet Conic.Cli.dll ...` the program is dotnet and the first argument the assembly; as a .NET tool, the apphost itself.
        string program = Environment.ProcessPath!;
        var arguments = Path.GetFileNameWithoutExtension(program) == "dotnet" ? args.Prepend(Environment.GetCommandLineArgs()[0]) : args;
        var start = new ProcessStartInfo(program) { UseShellExecute = false };
        foreach (string argument in arguments) start.ArgumentList.Add(argument);
        start.Environment[ConvolutionArithmetic.IsaCapVariable] = "AVX2";
        using var child = Process.Start(start)!;
        child.WaitForExit();
        return child.ExitCode;
    }
}
