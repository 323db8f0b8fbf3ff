using Conic.Augmentation;
using Conic.Data;
using Conic.Models;
using Conic.Runtime;
using SkiaSharp;
using static TorchSharp.torch;
using static Conic.Runtime.KeptScalars;

namespace Conic.Tests;

public class StreamingTests
{
    /// <summary>A dark 200 x 100 photo with a white 24 x 24 marker in its top-left corner, outside the centre square.</summary>
    static string PhotoWithCornerMarker(string folder, string name = "photo.png")
    {
        Directory.CreateDirectory(folder);
        using var bitmap = new SKBitmap(200, 100);
        bitmap.Erase(new SKColor(20, 20, 20));
        using (var canvas = new SKCanvas(bitmap))
            canvas.DrawRect(SKRect.Create(0, 0, 24, 24), new SKPaint { Color = SKColors.White });
        string path = Path.Combine(folder, name);
        using var data = bitmap.Encode(SKEncodedImageFormat.Png, 100);
        File.WriteAllBytes(path, data.ToArray());
        return path;
    }

    [Fact]
    public void TrainingCropsComeFromTheWholeImageNotTheStoredCentre()
    {
        string root = TestFolder.New();
        PhotoWithCornerMarker(root);
        var dataset = ImageFolderReader.Read(root, imageSize: 16);
        // The evaluation view is the centre square: no marker in it.
        Assert.True(dataset.Gather([0]).max().item<byte>() < 100);
        // A crop of the top-left corner holds it.
        var corner = dataset.Crops([0], [([new CropBox(-0.85f, -0.6f, 0.15f, 0.4f)], 16)])[0];
        Assert.True(corner.max().item<byte>() > 200);

        // Random resized crops reach it: over 64 small crops of one image, some hold the marker.
        var augmenter = new BatchAugmenter(new AugmentationOptions { CropAreaMin = 0.05, CropAreaMax = 0.1, JitterProbability = 0 },
                                           new InputNormalization([0f, 0f, 0f], [1f, 1f, 1f]));
        using var generator = new Generator(3);
        var views = augmenter.Views(dataset, Enumerable.Repeat(0, 64).ToArray(), CPU, generator);
        var brightest = views[0].amax([1, 2, 3]);
        Assert.True(brightest.gt(Kept(0.8)).any().item<bool>(), "no crop reached the marker in the corner");
        Assert.True(brightest.lt(Kept(0.3)).any().item<bool>(), "every crop held the marker");
    }

    [Fact]
    public void StreamedViewsAreTheSameForTheSameSeed()
    {
        string root = TestFolder.New();
        for (int i = 0; i < 4; i++) PhotoWithCornerMarker(root, $"{i}.png");
        var dataset = ImageFolderReader.Read(root, imageSize: 16, workers: 2);
        var augmenter = new BatchAugmenter(new AugmentationOptions(), new InputNormalization([0.5f, 0.5f, 0.5f], [0.25f, 0.25f, 0.25f]));
        Tensor[] Views(ulong seed)
        {
            using var generator = new Generator(seed);
            return augmenter.Views(dataset, [0, 1, 2, 3, 3, 2], CPU, generator);
        }
        var (first, again, other) = (Views(7), Views(7), Views(8));
        Assert.True(first[0].eq(again[0]).all().item<bool>() && first[1].eq(again[1]).all().item<bool>());
        Assert.False(first[0].eq(other[0]).all().item<bool>());
    }

    [Fact]
    public void LabelsComeFromALabelsCsv()
    {
        string root = TestFolder.New();
        PhotoWithCornerMarker(Path.Combine(root, "x"), "a.png");
        PhotoWithCornerMarker(root, "b.png");
        File.WriteAllText(Path.Combine(root, ImageFolderReader.LabelsFile), "file,label\nx/a.png,defect\nb.png,ok\n");
        var dataset = ImageFolderReader.Read(root, imageSize: 8);
        Assert.Equal(["defect", "ok"], dataset.ClassNames);
        Assert.Equal([1, 0], dataset.Labels!);

        File.WriteAllText(Path.Combine(root, ImageFolderReader.LabelsFile), "x/a.png,defect\n");
        Assert.Contains("no label for 1 image (e.g. b.png)", Assert.Throws<ConicException>(() => ImageFolderReader.Read(root, imageSize: 8)).Message);
    }

    [Fact]
    public void ASmallFolderTrainsWithTheDefaultsListsBadFilesAndAFailedStartLeavesNoFolder()
    {
        string root = TestFolder.New();
        string data = Path.Combine(root, "photos");
        for (int i = 0; i < 6; i++) PhotoWithCornerMarker(data, $"{i}.png");
        File.WriteAllBytes(Path.Combine(data, "broken.jpg"), []);
        string run = Path.Combine(root, "run");
        // Default instances (all) and batch size (256) on six images.
        var (exitCode, _, stderr) = CliRunner.Run("pretrain", "--data", data, "--run", run, "--epochs", "1", "--width", "4", "--image-size", "16",
                                                  "--threads", "1", "--monitor-every", "0", "--no-eval");
        Assert.True(exitCode == 0, stderr);
        Assert.Contains("note: batch size 256 is more than the 6 instances per epoch; training with batch 6", stderr);
        Assert.Contains("warning: 1 unreadable image in", stderr);
        Assert.Equal($"{Path.Combine(data, "broken.jpg")}\tempty file", File.ReadAllText(new RunFolder(run).BadImages).Trim());

        string failed = Path.Combine(root, "failed");
        var bad = CliRunner.Run("pretrain", "--data", data, "--run", failed, "--instances", "100", "--epochs", "1", "--no-eval");
        Assert.Equal(2, bad.ExitCode);
        Assert.Contains("--instances: 100 is more than the 6 training images", bad.StdErr);
        Assert.False(Directory.Exists(failed), "a failed start left its run folder behind");
    }

    [TcmallocFact]
    public void AnImageFolderReadsUnderThePreloadedAllocatorThatConicUses()
    {
        // ./conic preloads tcmalloc; memory a C library allocates must then not be freed by libc's own free.
        string tcmalloc = TcmallocFactAttribute.Library ?? throw new InvalidOperationException("libtcmalloc_minimal.so.4 is absent (apt-get install libtcmalloc-minimal4)");
        string root = TestFolder.New();
        for (int i = 0; i < 4; i++) PhotoWithCornerMarker(Path.Combine(root, "photos"), $"{i}.png");
        var (exitCode, _, stderr) = CliRunner.Run(new Dictionary<string, string> { ["LD_PRELOAD"] = tcmalloc },
                                                  "pretrain", "--data", Path.Combine(root, "photos"), "--run", Path.Combine(root, "run"), "--epochs", "1",
                                                  "--width", "4", "--image-size", "16", "--threads", "1", "--monitor-every", "0", "--no-eval");
        Assert.True(exitCode == 0, stderr);
    }

    [Fact]
    public void TheMemoryMappedCacheServesTheSameImagesAsTheFolder()
    {
        string root = TestFolder.New();
        for (int i = 0; i < 3; i++)
        {
            PhotoWithCornerMarker(Path.Combine(root, "photos", "a"), $"{i}.png");
            PhotoWithCornerMarker(Path.Combine(root, "photos", "b"), $"{i}.png");
        }
        var folder = ImageFolderReader.Read(Path.Combine(root, "photos"), imageSize: 16);
        string path = Path.Combine(root, "cache", "train" + ImageCache.Extension);
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        // Stored at full size (the photos' shorter side is 100 px), the cache holds exactly the decoded pixels.
        Assert.Empty(ImageCache.Write(folder, path, maxSide: 100));
        var cached = DatasetLoader.Load(Path.Combine(root, "cache"), imageSize: 16).Train;
        Assert.Equal((folder.Count, folder.Channels), (cached.Count, cached.Channels));
        Assert.Equal(folder.ClassNames, cached.ClassNames);
        Assert.Equal(folder.Labels, cached.Labels);
        Assert.Equal(folder.ItemNames, cached.ItemNames);
        int[] all = Enumerable.Range(0, folder.Count).ToArray();
        Assert.True(folder.Gather(all).eq(cached.Gather(all)).all().item<bool>());
        var boxes = all.Select(i => new CropBox(-0.5f + 0.1f * i, 0.2f, 0.3f, 0.5f)).ToArray();
        Assert.True(folder.Crops(all, [(boxes, 24)])[0].eq(cached.Crops(all, [(boxes, 24)])[0]).all().item<bool>());

        // A damaged cache is one line naming it.
        var bytes = File.ReadAllBytes(path);
        File.WriteAllBytes(path, bytes[..(bytes.Length - 100)]);
        Assert.Contains("truncated image cache", Assert.Throws<ConicException>(() => ImageCache.Open(path, 16)).Message);
    }

    [Fact]
    public void ConicCacheWritesACacheThatPretrainReads()
    {
        string root = TestFolder.New();
        for (int i = 0; i < 4; i++) PhotoWithCornerMarker(Path.Combine(root, "photos"), $"{i}.png");
        var cached = CliRunner.Run("cache", "--data", Path.Combine(root, "photos"), "--out", Path.Combine(root, "cache"), "--max-side", "40");
        Assert.True(cached.ExitCode == 0, cached.StdErr);
        Assert.Contains("4 images", cached.StdErr);
        var (exitCode, _, stderr) = CliRunner.Run("pretrain", "--data", Path.Combine(root, "cache"), "--run", Path.Combine(root, "run"), "--epochs", "1",
                                                  "--width", "4", "--image-size", "16", "--threads", "1", "--monitor-every", "0", "--no-eval");
        Assert.True(exitCode == 0, stderr);
        Assert.Contains($"data: 4 training images 3x16x16 from {Path.Combine(root, "cache", "train" + ImageCache.Extension)}", stderr);
    }
}
