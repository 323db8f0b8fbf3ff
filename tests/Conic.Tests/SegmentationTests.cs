using System.Buffers.Binary;
using System.IO.Compression;
using System.Text.Json;
using Conic.Data;
using Conic.Evaluation;
using Conic.Models;
using Conic.Runtime;
using Conic.Transfer;
using static TorchSharp.torch;

namespace Conic.Tests;

public class SegmentationTests
{
    static Tensor Mask(params byte[][] rows) => tensor(rows.SelectMany(r => r).ToArray(), [rows.Length, rows[0].Length], dtype: ScalarType.Byte);

    [Fact]
    public void IoUFollowsItsDefinitionOnHandMadeMasks()
    {
        var perfect = new SegmentationMetrics(3);
        using var truth = Mask([0, 1, 1], [0, 2, 2]);
        perfect.Add(truth, truth);
        Assert.Equal(1.0, perfect.MeanIoU);
        Assert.Equal(1.0, perfect.PixelAccuracy);

        // Class 0: TP 1, FN 1 (predicted 2) -> 1/2. Class 1: TP 1, FN 1 (predicted 2) -> 1/2. Class 2: TP 2, FP 2 -> 2/4.
        // The ignored pixels (255) count nowhere, whatever is predicted there.
        var scores = new SegmentationMetrics(3);
        using var labels = Mask([0, 1, 1, 255], [0, 2, 2, 255]);
        using var predicted = Mask([0, 1, 2, 1], [2, 2, 2, 0]);
        scores.Add(predicted, labels);
        Assert.Equal([1.0 / 2, 1.0 / 2, 2.0 / 4], scores.ClassIoU);
        Assert.Equal(0.5, scores.MeanIoU, 12);
        Assert.Equal(4.0 / 6, scores.PixelAccuracy, 12);
        Assert.Equal([2L, 2, 2], scores.TruePixels);
    }

    [Fact]
    public void AClassNeitherPresentNorPredictedHasNoIoUAndStaysOutOfTheMean()
    {
        var scores = new SegmentationMetrics(4);
        using var labels = Mask([0, 1], [1, 0]);
        using var predicted = Mask([0, 1], [1, 3]);
        scores.Add(predicted, labels);
        Assert.True(double.IsNaN(scores.ClassIoU[2]));
        Assert.Equal(0.0, scores.ClassIoU[3]);  // predicted, never present: a wrong class, IoU 0
        Assert.Equal((0.5 + 1 + 0) / 3, scores.MeanIoU, 12);
        Assert.Throws<ArgumentException>(() => scores.Add(Mask([0, 4]), Mask([0, 4])));
    }

    [Fact]
    public void GrayAndPaletteMasksReadAsClassIndices()
    {
        string folder = TestFolder.New();
        byte[] indices = [0, 1, 2, 255, 3, 0];
        string gray = Path.Combine(folder, "gray.png");
        MaskReader.Write(gray, indices, 3, 2);
        AssertMask(indices, 3, 2, MaskReader.Read(gray));

        // A VOC-style palette PNG: index 0 black, 1 red, 2 green, 3 blue, then black again as padding; 255 the border colour.
        var palette = new byte[256 * 3];
        (palette[3], palette[7], palette[11]) = ((byte)128, (byte)128, (byte)128);
        (palette[765], palette[766], palette[767]) = ((byte)224, (byte)224, (byte)192);
        string indexed = Path.Combine(folder, "palette.png");
        File.WriteAllBytes(indexed, PalettePng(indices, 3, 2, palette));
        AssertMask(indices, 3, 2, MaskReader.Read(indexed));

        string rgb = Path.Combine(folder, "colour.png");
        using (var bitmap = new SkiaSharp.SKBitmap(2, 2))
        {
            using var encoded = bitmap.Encode(SkiaSharp.SKEncodedImageFormat.Png, 100);
            File.WriteAllBytes(rgb, encoded.ToArray());
        }
        var error = Assert.Throws<ConicException>(() => MaskReader.Read(rgb));
        Assert.StartsWith($"{rgb}: a RGB", error.Message);
    }

    static void AssertMask(byte[] indices, int width, int height, (byte[] Indices, int Width, int Height) read)
    {
        Assert.Equal(indices, read.Indices);
        Assert.Equal((width, height), (read.Width, read.Height));
    }

    /// <summary>An 8-bit palette PNG written by hand (SkiaSharp cannot write palettes).</summary>
    static byte[] PalettePng(byte[] indices, int width, int height, byte[] palette)
    {
        using var file = new MemoryStream();
        file.Write([0x89, (byte)'P', (byte)'N', (byte)'G', 0x0D, 0x0A, 0x1A, 0x0A]);
        var header = new byte[13];
        BinaryPrimitives.WriteInt32BigEndian(header, width);
        BinaryPrimitives.WriteInt32BigEndian(header.AsSpan(4), height);
        (header[8], header[9]) = (8, 3);
        Chunk(file, "IHDR", header);
        Chunk(file, "PLTE", palette);
        using var packed = new MemoryStream();
        using (var zlib = new ZLibStream(packed, CompressionLevel.Optimal, leaveOpen: true))
            for (int y = 0; y < height; y++)
            {
                zlib.WriteByte(0);  // filter: none
                zlib.Write(indices, y * width, width);
            }
        Chunk(file, "IDAT", packed.ToArray());
        Chunk(file, "IEND", []);
        return file.ToArray();
    }

    static void Chunk(Stream file, string type, byte[] data)
    {
        var length = new byte[4];
        BinaryPrimitives.WriteInt32BigEndian(length, data.Length);
        file.Write(length);
        byte[] typed = [.. System.Text.Encoding.ASCII.GetBytes(type), .. data];
        file.Write(typed);
        var crc = new byte[4];
        BinaryPrimitives.WriteUInt32BigEndian(crc, Crc32(typed));
        file.Write(crc);
    }

    static uint Crc32(byte[] data)
    {
        uint crc = 0xFFFFFFFF;
        foreach (byte b in data)
        {
            crc ^= b;
            for (int k = 0; k < 8; k++) crc = (crc & 1) != 0 ? (crc >> 1) ^ 0xEDB88320 : crc >> 1;
        }
        return ~crc;
    }

    [Theory]
    [InlineData(true, 24)]
    [InlineData(false, 40)]
    public void SegmenterGivesClassLogitsAtTheInputResolution(bool smallStem, int side)
    {
        using var network = new DenseNetwork(new ResNet(new BackboneOptions { Width = 4, SmallImageStem = smallStem }), outputs: 5, upsampleToInput: true, decoderChannels: 8);
        using var logits = network.call(randn(2, 1, side, side));
        Assert.Equal([2L, 5, side, side], logits.shape);
    }

    [Fact]
    public void ScenesHaveMasksAndCocoBoxesThatAgree()
    {
        string scenes = SyntheticData.WriteScenes();
        Assert.Equal(["background", "class 0", "class 1", "class 2", "class 3"], File.ReadAllLines(Path.Combine(scenes, "classes.txt")));
        var coco = JsonSerializer.Deserialize<CocoFile>(File.ReadAllText(Path.Combine(scenes, "val", "annotations.json")), CocoFile.Json)!;
        Assert.Equal(8, coco.Images.Count);
        Assert.NotEmpty(coco.Annotations);
        foreach (var image in coco.Images)
        {
            var (mask, width, _) = MaskReader.Read(Path.Combine(scenes, "val", "masks", image.FileName));
            var objects = coco.Annotations.Where(a => a.ImageId == image.Id).ToList();
            // Items do not overlap, so each object's mask pixels lie inside its box, as many as its area.
            foreach (var box in objects)
            {
                int inside = 0;
                for (int y = (int)box.Bbox[1]; y < box.Bbox[1] + box.Bbox[3]; y++)
                for (int x = (int)box.Bbox[0]; x < box.Bbox[0] + box.Bbox[2]; x++)
                    inside += mask[y * width + x] == box.CategoryId ? 1 : 0;
                Assert.True(inside >= box.Area && box.Area > 0, $"{image.FileName}: box {string.Join(",", box.Bbox)} holds {inside} of {box.Area} pixels");
            }
            Assert.Equal(mask.Count(v => v != 0), objects.Sum(o => (int)o.Area));
        }
    }

    [Fact]
    public void ClassificationScenesPutEachItemInItsClassFolder()
    {
        // Items of class c are flat squares of brightness 120 + 40c, so every scene shows which class it holds: its
        // brightest pixel (the background stays at or below 100).
        string source = TestFolder.New();
        const int size = 8, classes = 4;
        foreach (var (prefix, count) in new[] { ("train", 40), ("t10k", 12) })
        {
            var labels = Enumerable.Range(0, count).Select(i => (byte)(i % classes)).ToArray();
            SyntheticData.WriteIdx(Path.Combine(source, $"{prefix}-images-idx3-ubyte.gz"), [count, size, size],
                                   labels.SelectMany(label => Enumerable.Repeat((byte)(120 + 40 * label), size * size)).ToArray());
            SyntheticData.WriteIdx(Path.Combine(source, $"{prefix}-labels-idx1-ubyte.gz"), [count], labels);
        }
        string output = Path.Combine(source, "scenes");
        var (exitCode, _, stderr) = CliRunner.Run("make-scenes", "--data", source, "--out", output, "--classification", "--train", "30", "--val", "10", "--size", "24");
        Assert.True(exitCode == 0, stderr);

        var splits = DatasetLoader.Load(output, imageSize: 24);
        Assert.Equal(30, splits.Train.Count);
        Assert.Equal(10, splits.Test!.Count);
        foreach (var split in new[] { splits.Train, splits.Test })
        {
            using var pixels = split.Gather(Enumerable.Range(0, split.Count).ToArray());
            var values = pixels.data<byte>().ToArray();
            for (int i = 0; i < split.Count; i++)
            {
                int brightest = values.Skip(i * 24 * 24).Take(24 * 24).Max(v => (int)v);
                Assert.Equal(120 + 40 * split.Labels![i], brightest);
            }
        }
    }

    [Fact]
    public void KilledFinetuneResumesToTheResultOfAnUninterruptedOne()
    {
        string scenes = SyntheticData.WriteScenes();
        string uninterrupted = Path.Combine(scenes, "uninterrupted"), killed = Path.Combine(scenes, "killed");
        const int epochs = 12;
        Assert.Equal(0, CliRunner.Run(CliRunner.Finetune("segmentation", scenes, "none", uninterrupted, epochs)).ExitCode);
        using (var process = CliRunner.Start(CliRunner.Finetune("segmentation", scenes, "none", killed, epochs)))
        {
            string checkpoint = new RunFolder(killed).Checkpoint;
            while (!File.Exists(checkpoint) && !process.HasExited) Thread.Sleep(2);
            process.Kill(entireProcessTree: true);
            process.WaitForExit();
        }
        Assert.False(File.Exists(new RunFolder(killed).Evaluation), "the fine-tune finished before it could be killed");
        var (exitCode, _, stderr) = CliRunner.Run([.. CliRunner.Finetune("segmentation", scenes, "none", killed, epochs), "--resume"]);
        Assert.True(exitCode == 0, stderr);
        Assert.Contains("resuming", stderr);
        SegmentationResult Result(string run) => JsonSerializer.Deserialize<SegmentationResult>(File.ReadAllText(new RunFolder(run).Evaluation), Training.RunJson.Options)!;
        Assert.Equal(Result(uninterrupted).MeanIoU, Result(killed).MeanIoU);
        Assert.Equal(Result(uninterrupted).Classes, Result(killed).Classes);
        var expected = new Training.MetricsCsv(new RunFolder(uninterrupted).Metrics);
        var resumed = new Training.MetricsCsv(new RunFolder(killed).Metrics);
        Assert.Equal(expected.Column("loss"), resumed.Column("loss"));
        Assert.Equal(expected.Column("val_miou"), resumed.Column("val_miou"));
    }

    [Fact]
    public void BadMasksAreOneLineErrorsNamingTheFile()
    {
        string scenes = SyntheticData.WriteScenes(train: 4, val: 2);
        string output = Path.Combine(scenes, "run");
        string mask = Path.Combine(scenes, "train", "masks", "scene-00001.png");

        MaskReader.Write(mask, new byte[20 * 20], 20, 20);
        var (exitCode, _, stderr) = CliRunner.Run(CliRunner.Finetune("segmentation", scenes, "none", output, 1));
        Assert.Equal(2, exitCode);
        Assert.EndsWith($"error: {mask}: mask is 20x20 px but its image {Path.Combine(scenes, "train", "images", "scene-00001.png")} is 32x32", stderr.Trim());

        MaskReader.Write(mask, Enumerable.Repeat((byte)7, 32 * 32).ToArray(), 32, 32);
        (exitCode, _, stderr) = CliRunner.Run(CliRunner.Finetune("segmentation", scenes, "none", output, 1));
        Assert.Equal(2, exitCode);
        Assert.EndsWith($"error: {mask}: class index 7, but {Path.Combine(scenes, "classes.txt")} names 5 classes (0..4; 255 = ignore)", stderr.Trim());

        File.Delete(mask);
        (exitCode, _, stderr) = CliRunner.Run(CliRunner.Finetune("segmentation", scenes, "none", output, 1));
        Assert.Equal(2, exitCode);
        Assert.EndsWith($"error: {Path.Combine(scenes, "train", "images", "scene-00001.png")}: no mask ({mask} is missing)", stderr.Trim());
        Assert.DoesNotContain("   at ", stderr);
    }
}
