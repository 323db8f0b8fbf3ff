using System.Globalization;
using Conic.Bench;

// Benchmarks (not tests): timings of this machine, printed as Markdown tables for the README.
//   head   [--sizes 10000,60000,250000,1000000] [--chunks 256,...,16384] [--views 512] [--dim 128] [--repeats 3] [--materialized-limit-gib 12]
//   step   [--data PATH] [--instances 2048] [--batch 256] [--steps 10] [--epochs 3] [--python PATH]
//   profile [--data PATH] [--widths 8,16,32,64] [--instances 2048] [--batch 256] [--steps 10]
//   memory [--data PATH] [--steps 2000] [--batch 32]
//   arithmetic [--widths 4,8,16,64] [--batches 64,512] [--size 28] [--repeats 5]
//   make-photos --out DIR [--count 100000] [--classes 10]
//   pipeline --data DIR [--image-size 64] [--batch 256] [--batches 20] [--workers 2]
//   sharded-step [--instances 1000000] [--batch 64] [--steps 5] [--threads N] [--distributed yes]  (under mpirun -np P for --distributed yes)
//   scalar-lifetime [--calls 200000]
var arguments = args.Skip(1).Chunk(2).Where(pair => pair.Length == 2).ToDictionary(pair => pair[0], pair => pair[1]);
string Text(string name, string fallback) => arguments.TryGetValue(name, out var value) ? value : fallback;
int Int(string name, int fallback) => int.Parse(Text(name, fallback.ToString(CultureInfo.InvariantCulture)), CultureInfo.InvariantCulture);

switch (args.FirstOrDefault())
{
    case "head":
        HeadBenchmark.Run(Text("--sizes", "10000,60000,250000,1000000").Split(',').Select(long.Parse).ToArray(),
                          Text("--chunks", "256,512,1024,2048,4096,8192,16384").Split(',', StringSplitOptions.RemoveEmptyEntries).Select(long.Parse).ToArray(),
                          Int("--views", 512), Int("--dim", 128), Int("--repeats", 3),
                          double.Parse(Text("--materialized-limit-gib", "12"), CultureInfo.InvariantCulture), Console.Out);
        return 0;
    case "step":
        StepBenchmark.Run(arguments.GetValueOrDefault("--data"), Int("--instances", 2048), Int("--batch", 256), Int("--steps", 10),
                          Int("--epochs", 3), arguments.GetValueOrDefault("--python"), Console.Out);
        return 0;
    case "profile":
        ProfileBenchmark.Run(arguments.GetValueOrDefault("--data"), Text("--widths", "8,16,32,64").Split(',').Select(int.Parse).ToArray(),
                             Int("--instances", 2048), Int("--batch", 256), Int("--steps", 10), Console.Out);
        return 0;
    case "memory":
        MemoryBenchmark.Run(arguments.GetValueOrDefault("--data"), Int("--steps", 2000), Int("--batch", 32), Console.Out);
        return 0;
    case "arithmetic":
        ArithmeticBenchmark.Run(Text("--widths", "4,8,16,64").Split(',').Select(int.Parse).ToArray(),
                                Text("--batches", "64,512").Split(',').Select(int.Parse).ToArray(), Int("--size", 28), Int("--repeats", 5), Console.Out);
        return 0;
    case "make-photos":
        PipelineBenchmark.MakePhotos(Text("--out", "/tmp/conic-photos"), Int("--count", 100_000), Int("--classes", 10), Console.Out);
        return 0;
    case "pipeline":
        PipelineBenchmark.Run(Text("--data", "/tmp/conic-photos"), Int("--image-size", 64), Int("--batch", 256), Int("--batches", 20),
                              Int("--workers", 2), Console.Out);
        return 0;
    case "sharded-step":
        ShardedStepBenchmark.Run(Int("--instances", 1_000_000), Int("--batch", 64), Int("--steps", 5), Text("--distributed", "no") == "yes", Int("--threads", 0), Console.Out);
        return 0;
    case "scalar-lifetime":
        ScalarLifetimeBenchmark.Run(Int("--calls", 200_000), Console.Out);
        return 0;
    default:
        Console.Error.WriteLine("usage: dotnet run --project bench/Conic.Bench -c Release -- head|step|profile|memory|arithmetic|make-photos|pipeline|sharded-step|scalar-lifetime [options] (see Program.cs)");
        return 2;
}
