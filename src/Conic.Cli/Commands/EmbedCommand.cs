using System.CommandLine;
using System.Diagnostics;
using Conic.Data;
using Conic.Evaluation;
using Conic.Export;

namespace Conic.Cli.Commands;

/// <summary><c>conic embed</c>: the trained backbone's features of every image, as CSV and NumPy .npy.</summary>
static class EmbedCommand
{
    public static Command Create()
    {
        var run = FinishedRun.RunOption();
        var data = FinishedRun.DataOption("images: a folder (subfolders included), IDX files, or train/ and test/ folders (default: the run's data)");
        var split = new Option<string>("--split") { HelpName = "NAME", Description = "train or test (for data with both)", DefaultValueFactory = _ => "train" };
        split.AcceptOnlyFromAmong("train", "test");
        var output = new Option<string?>("--out") { HelpName = "PREFIX", Description = "output path without extension (default: RUN/embeddings)" };
        var device = FinishedRun.DeviceOption();
        var command = new Command("embed",
            "Writes the frozen backbone features (no augmentation) of every image: PREFIX.csv (file name, or index for IDX data, then " +
            "the vector) and PREFIX.npy (float32 [images, features], numpy.load reads it).") { run, data, split, output, device };
        command.SetAction(result => Run(result.GetValue(run)!, result.GetValue(data), result.GetValue(split) == "test", result.GetValue(output), result.GetValue(device)));
        return command;
    }

    static int Run(string run, string? data, bool test, string? output, string? device)
    {
        using var runLock = new Runtime.RunFolder(run).Lock(create: false);

        using var model = FinishedRun.LoadModel(run, device);
        var splits = FinishedRun.LoadData(model, data);
        var images = test ? splits.Test ?? throw new ConicException($"{splits.Train.Source}: has no test split") : splits.Train;
        if (images.Channels != model.Backbone.Options.InputChannels)
            throw new ConicException($"{images.Source}: images have {images.Channels} channels, the encoder takes {model.Backbone.Options.InputChannels}");

        var clock = Stopwatch.StartNew();
        var lastReport = TimeSpan.Zero;
        using var features = FeatureExtractor.Extract(model, images, progress: done =>
        {
            if (done < images.Count && clock.Elapsed - lastReport < TimeSpan.FromSeconds(1)) return;
            lastReport = clock.Elapsed;
            Console.Error.WriteLine($"embedding {done}/{images.Count} images ({done / Math.Max(clock.Elapsed.TotalSeconds, 1e-3):F0} img/s)");
        });
        string prefix = output ?? Path.Combine(run, "embeddings");
        string? folder = Path.GetDirectoryName(Path.GetFullPath(prefix));
        if (folder != null) Directory.CreateDirectory(folder);
        EmbeddingWriter.WriteCsv(prefix + ".csv", features, images.ItemNames);
        EmbeddingWriter.WriteNpy(prefix + ".npy", features);
        Console.Error.WriteLine($"embeddings: {prefix}.csv and {prefix}.npy ({features.shape[0]} x {features.shape[1]})");
        return 0;
    }
}
