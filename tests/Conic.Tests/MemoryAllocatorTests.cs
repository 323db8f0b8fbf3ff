using Conic.Runtime;

namespace Conic.Tests;

/// <summary>A fact that needs Debian's libtcmalloc-minimal4; skipped, with the reason shown, where it is absent (outside CI).</summary>
public sealed class TcmallocFactAttribute : FactAttribute
{
    public static readonly string? Library = new[] { "/usr/lib/x86_64-linux-gnu/libtcmalloc_minimal.so.4", "/usr/lib/aarch64-linux-gnu/libtcmalloc_minimal.so.4" }
        .FirstOrDefault(File.Exists);

    public TcmallocFactAttribute()
    {
        Skip = ToolRequirement.SkipReason(Library == null ? "libtcmalloc_minimal.so.4 is absent (apt-get install libtcmalloc-minimal4)" : null);
    }
}

public class MemoryAllocatorTests
{
    [Theory]
    [InlineData("7f1c2a000000-7f1c2a024000 r--p 00000000 fe:01 1234 /usr/lib/x86_64-linux-gnu/libtcmalloc_minimal.so.4.5.10", "tcmalloc")]
    [InlineData("7f1c2a000000-7f1c2a024000 r--p 00000000 fe:01 1234 /usr/lib/x86_64-linux-gnu/libjemalloc.so.2", "jemalloc")]
    [InlineData("7f1c2a000000-7f1c2a024000 r--p 00000000 fe:01 1234 /usr/lib/x86_64-linux-gnu/libc.so.6", "glibc")]
    public void AllocatorIsIdentifiedFromTheMappedLibraries(string mapping, string expected)
    {
        string[] maps = ["55d0c0000000-55d0c0001000 r--p 00000000 fe:01 99 /usr/bin/dotnet", mapping, "7ffd00000000-7ffd00021000 rw-p 00000000 00:00 0 [stack]"];
        Assert.Equal(expected, MemoryAllocator.Identify(maps));
    }

    [Theory]
    [InlineData("./conic", "/usr/bin/dotnet", "Conic.Cli", "then ./conic preloads it")]
    [InlineData(null, "/root/.dotnet/tools/conic", "Conic.Cli", "then start with LD_PRELOAD=libtcmalloc_minimal.so.4 conic ...")]
    [InlineData(null, "/usr/share/dotnet/dotnet", "MyApp", "then start with LD_PRELOAD=libtcmalloc_minimal.so.4 dotnet MyApp.dll ...")]
    public void TheGlibcHintNamesTheProgramThatWasStarted(string? launcher, string processPath, string entryAssembly, string expected)
    {
        Assert.EndsWith(expected + ")", MemoryAllocator.Describe("glibc", launcher, processPath, entryAssembly));
        Assert.Equal("tcmalloc", MemoryAllocator.Describe("tcmalloc", launcher, processPath, entryAssembly));
    }

    [TcmallocFact]
    public void PreloadedTcmallocIsReportedAndTrainsTheSameNumbersAsGlibc()
    {
        string data = SyntheticData.WriteIdx(trainCount: 64, testCount: 16);
        string Train(string name, IReadOnlyDictionary<string, string> environment)
        {
            string run = Path.Combine(data, name);
            var (exitCode, stdout, stderr) = CliRunner.Run(environment, "pretrain", "--data", data, "--run", run, "--instances", "64", "--batch-size", "16",
                                                           "--epochs", "2", "--width", "4", "--threads", "1", "--no-eval", "--monitor-every", "0");
            Assert.True(exitCode == 0, stderr);
            string allocatorLine = (stdout + stderr).Split('\n').Single(line => line.StartsWith("memory allocator: ", StringComparison.Ordinal));
            // Loss columns only: the time and images/s columns differ between any two runs.
            var losses = File.ReadLines(Path.Combine(run, "metrics.csv")).Select(row => string.Join(',', row.Split(',').Take(6)));
            return allocatorLine + "\n" + string.Join('\n', losses);
        }

        string glibc = Train("glibc", new Dictionary<string, string> { ["LD_PRELOAD"] = "" });
        string tcmalloc = Train("tcmalloc", new Dictionary<string, string> { ["LD_PRELOAD"] = TcmallocFactAttribute.Library! });

        Assert.StartsWith("memory allocator: glibc malloc (CPU training runs about twice as fast with tcmalloc", glibc);
        Assert.StartsWith("memory allocator: tcmalloc\n", tcmalloc);
        Assert.Equal(glibc[glibc.IndexOf('\n')..], tcmalloc[tcmalloc.IndexOf('\n')..]);
    }
}
