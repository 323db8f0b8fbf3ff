using System.Diagnostics;
using Conic.Data;
using Conic.Evaluation;
using Conic.Export;
using Conic.Training;

namespace Conic.Cli.Commands;

/// <summary><c>conic embed</c>: the trained backbone's features of every image, as CSV and NumPy .npy.</summary>
static class EmbedCommand
{
    public static int Run(string[] args)
    {
        string run = new PretrainOptions().RunDirectory;
        string? data = null, output = null, device = null;
        bool test = false;
        var table = new OptionTable("embed",
            "Writes the frozen backbone features (no augmentation) of every image: PREFIX.csv (file name, or index for IDX\n" +
            "data, then the vector) and PREFIX.npy (float32 [images, features], numpy.load reads it).");
        table.Value("--run", "DIR", "run folder with checkpoint.bin", () => run, v => run = v);
        table.Value("--data", "PATH", "images: a folder (subfolders included), IDX files, or train/ and test/ folders", () => "the run's data", v => data = v);
        table.Value("--split", "NAME", "train or test (for data with both)", () => "train",
                    v => test = OptionTable.Choice("--split", v, ("train", false), ("test", true)));
        table.Value("--out", "PREFIX", "output path without extension", () => "RUN/embeddings", v => output = v);
        table.Value("--device", "DEV", "cpu, cuda or cuda:N", () => "from the run", v => device = v);
        if (!table.Parse(args)) return 0;
        using var runLock = Runtime.RunLock.Acquire(run, create: false);

        using var model = RunFolder.LoadModel(run, device);
        var splits = RunFolder.LoadData(model, data);
        var images = test ? splits.Test ?? throw new ConicException($"{splits.Train.Source}: has no test split (--split test)") : splits.Train;
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
