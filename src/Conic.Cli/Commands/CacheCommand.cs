using System.CommandLine;
using System.Diagnostics;
using Conic.Data;

namespace Conic.Cli.Commands;

/// <summary><c>conic cache</c>: an image folder decoded once into memory-mapped cache files that <c>--data</c> then reads.</summary>
static class CacheCommand
{
    public static Command Create()
    {
        var data = new Option<string>("--data") { HelpName = "DIR", Description = "image folder, or a folder with train/ and test/ image folders", Required = true };
        var output = new Option<string>("--out") { HelpName = "DIR", Description = $"where train{ImageCache.Extension} (and test{ImageCache.Extension}) go; pass it as --data later", Required = true };
        var maxSide = new Option<int>("--max-side") { HelpName = "PX", Description = "shorter side of the stored images at most this (larger than the --image-size of the runs)", DefaultValueFactory = _ => 160 };
        var workers = new Option<int>("--workers") { HelpName = "N", Description = "decoding threads; 0 = one per core", DefaultValueFactory = _ => 0 };
        var command = new Command("cache",
            "Decodes every image of a folder once, resized so that its shorter side is at most --max-side, into one file with an " +
            "index that later runs read through a memory map instead of decoding JPEGs (FFCV's idea). Crops still come from the " +
            "whole stored image.") { data, output, maxSide, workers };
        command.SetAction(result => Run(result.GetValue(data)!, result.GetValue(output)!, result.GetValue(maxSide), result.GetValue(workers)));
        return command;
    }

    static int Run(string data, string output, int maxSide, int workers)
    {
        var clock = Stopwatch.StartNew();
        var splits = DatasetLoader.Load(data, maxSide, Console.Error, workers: workers);
        if (!splits.Train.IsStreamed) throw new ConicException($"{data}: IDX data is held in memory already; only image folders are cached");
        foreach (string note in splits.Notes) Console.Error.WriteLine($"note: {note}");
        Directory.CreateDirectory(output);
        foreach (var (split, name) in new[] { (splits.Train, "train"), (splits.Test, "test") })
        {
            if (split == null) continue;
            string path = Path.Combine(output, name + ImageCache.Extension);
            foreach (string note in ImageCache.Write(split, path, maxSide, workers, Console.Error)) Console.Error.WriteLine($"note: {note}");
            Console.Error.WriteLine($"cache: {path} ({split.Count} images, {new FileInfo(path).Length / 1048576.0:F0} MiB)");
        }
        Console.Error.WriteLine($"cached in {clock.Elapsed.TotalSeconds:F0} s; use --data {output}");
        return 0;
    }
}
