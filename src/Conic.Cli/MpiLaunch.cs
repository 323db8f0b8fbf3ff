using System.Diagnostics;
using Conic;
using Conic.Distributed;
using Conic.Models;

/// <summary>
/// <c>--processes N</c>: runs this command as N data-parallel ranks on this machine under Open MPI's mpirun, with
/// <c>--distributed</c> in place of <c>--processes N</c>, and returns mpirun's exit code.
/// </summary>
static class MpiLaunch
{
    const string Mpirun = "mpirun";
    /// <summary>When the launching command started (round-trip UTC), for the ranks' time budget.</summary>
    public const string StartedVariable = "CONIC_STARTED_UTC";

    /// <summary>When this command started: the launching command's time for a rank started by <see cref="Run"/>.</summary>
    public static DateTime StartedUtc() =>
        DateTime.TryParse(Environment.GetEnvironmentVariable(StartedVariable), null, System.Globalization.DateTimeStyles.RoundtripKind, out var launched)
            ? launched.ToUniversalTime()
            : System.Diagnostics.Process.GetCurrentProcess().StartTime.ToUniversalTime();

    /// <summary>
    /// Where the ranks of a launch ask for a restart with oneDNN held to AVX2 (<see cref="Conic.Models.OneDnnIsaCapNeeded"/>):
    /// set for ranks this command started, null otherwise.
    /// </summary>
    public static string? IsaCapRequest => Environment.GetEnvironmentVariable(IsaCapRequestVariable) is { Length: > 0 } path ? path : null;

    const string IsaCapRequestVariable = "CONIC_ISA_CAP_REQUEST";

    public static int Run(IReadOnlyList<string> args, int processes)
    {
        string? mpirun = FindOnPath(Mpirun)
            ?? throw new ConicException($"--processes {processes}: {Mpirun} not found; install Open MPI ('apt-get install openmpi-bin libopenmpi-dev')");
        string request = Path.Combine(Path.GetTempPath(), $"conic-isa-cap-request.{Environment.ProcessId}");
        try
        {
            int exitCode = Launch(mpirun, args, processes, request, isaCap: null);
            if (exitCode != 0 || !File.Exists(request)) return exitCode;
            // As a single process reruns itself: oneDNN reads its cap once, from the environment of a new process.
            Console.Error.WriteLine($"arithmetic: {File.ReadAllText(request)}; restarting the ranks with {ConvolutionArithmetic.IsaCapVariable}=AVX2");
            File.Delete(request);
            return Launch(mpirun, args, processes, request, isaCap: "AVX2");
        }
        finally
        {
            File.Delete(request);
        }
    }

    static int Launch(string mpirun, IReadOnlyList<string> args, int processes, string isaCapRequest, string? isaCap)
    {
        var rankArguments = WithoutOption(args, "--processes").Append("--distributed");
        var (program, arguments) = ThisProgram.With(rankArguments);
        var start = new ProcessStartInfo(mpirun) { UseShellExecute = false };
        // A --time-budget counts from this launch, not from the ranks' start.
        start.Environment[StartedVariable] = System.Diagnostics.Process.GetCurrentProcess().StartTime.ToUniversalTime().ToString("O");
        start.Environment[IsaCapRequestVariable] = isaCapRequest;
        if (isaCap != null) start.Environment[ConvolutionArithmetic.IsaCapVariable] = isaCap;
        // The ranks end when this command is killed (mpirun, their parent, would not end them).
        ParentWatch.WatchedBy(start);
        foreach (string argument in MpirunOptions(processes)) start.ArgumentList.Add(argument);
        start.ArgumentList.Add(program);
        foreach (string argument in arguments) start.ArgumentList.Add(argument);
        Console.Error.WriteLine($"launching: {(isaCap != null ? $"{ConvolutionArithmetic.IsaCapVariable}={isaCap} " : "")}{Mpirun} {string.Join(' ', start.ArgumentList)}");
        using var child = Process.Start(start)!;
        child.WaitForExit();
        return child.ExitCode;
    }

    /// <summary>
    /// N ranks on this machine's cores, however many there are; each rank sets its own threads (cores / N), so no
    /// binding. Open MPI refuses to run as root unless told, which containers and CI usually are.
    /// </summary>
    public static IEnumerable<string> MpirunOptions(int processes)
    {
        yield return "-np";
        yield return processes.ToString(System.Globalization.CultureInfo.InvariantCulture);
        yield return "--oversubscribe";
        yield return "--bind-to";
        yield return "none";
        if (Environment.UserName == "root") yield return "--allow-run-as-root";
    }

    static IEnumerable<string> WithoutOption(IReadOnlyList<string> args, string option)
    {
        for (int i = 0; i < args.Count; i++)
        {
            if (args[i] == option) { i++; continue; }
            if (args[i].StartsWith(option + "=", StringComparison.Ordinal)) continue;
            yield return args[i];
        }
    }

    static string? FindOnPath(string name) =>
        (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':', StringSplitOptions.RemoveEmptyEntries)
            .Select(folder => Path.Combine(folder, name)).FirstOrDefault(File.Exists);
}
