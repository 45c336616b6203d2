// swift-tools-version:6.0
import PackageDescription

let package = Package(
    name: "cephfs-volumed",
    products: [
        .executable(name: "cephfs-volumed", targets: ["cephfs-volumed"]),
        .executable(name: "rpc-cli", targets: ["rpc-cli"]),
        .executable(name: "volumed-bench", targets: ["volumed-bench"]),
        .library(name: "VolumeClient", targets: ["VolumeClient"]),
        .library(name: "VolumeProtocol", targets: ["VolumeProtocol"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.6.0"),
        .package(url: "https://github.com/HdrHistogram/hdrhistogram-swift", from: "0.1.0"),
    ],
    targets: [
        // C access: librados imports cleanly; libcephfs goes through a C facade
        // built with 64-bit file offsets (see Sources/CCephFS/include/ccephfs.h).
        .systemLibrary(name: "CRados", providers: [.apt(["librados-dev"])]),
        .target(
            name: "CCephFS",
            cSettings: [.define("_FILE_OFFSET_BITS", to: "64")],
            linkerSettings: [.linkedLibrary("cephfs")]
        ),

        // epoll and eventfd, which Swift's Glibc module does not export.
        .target(name: "CEpoll"),

        .target(name: "JSONValue"),
        // Small POSIX helpers (Unix socket addresses, EINTR retries) every module shares.
        .target(name: "POSIXSupport"),
        // The dev cluster's env file and the processes run against it, for the tests and the bench.
        .target(name: "DevCluster", dependencies: ["POSIXSupport"]),
        .target(
            name: "Ceph",
            dependencies: ["CRados", "CCephFS", "JSONValue", "POSIXSupport"]
        ),
        // The worker thread pool, shared by the engine (helper threads) and the RPC server (call pools).
        .target(name: "WorkerThreads"),
        .target(
            name: "VolumeEngine",
            dependencies: ["Ceph", "JSONValue", "VolumeProtocol", "WorkerThreads", .product(name: "Logging", package: "swift-log")],
            // Test builds only: release builds (the .deb) never contain crash points.
            swiftSettings: [.define("VOLUMED_CRASH_POINTS", .when(configuration: .debug))]
        ),
        .target(name: "VolumeProtocol", dependencies: ["JSONValue"]),
        // The RPC server: event loops, connections, dispatcher, keyed serialiser,
        // deadlines and worker pools. No Ceph, no engine.
        .target(
            name: "RPCServer",
            dependencies: [
                "VolumeProtocol", "JSONValue", "CEpoll", "POSIXSupport", "WorkerThreads",
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // The engine's operations served over RPCServer: handlers, error mapping, wiring.
        .target(
            name: "VolumeService",
            dependencies: [
                "RPCServer", "VolumeEngine", "VolumeProtocol", "JSONValue", "Ceph", "WorkerThreads",
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .target(name: "VolumeClient", dependencies: ["VolumeProtocol", "JSONValue", "POSIXSupport"]),
        .executableTarget(
            name: "cephfs-volumed",
            dependencies: [
                "RPCServer", "VolumeService", "VolumeEngine",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .executableTarget(
            name: "rpc-cli",
            dependencies: [
                "VolumeClient", "VolumeProtocol", "JSONValue",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),

        .executableTarget(
            name: "volumed-bench",
            dependencies: [
                "VolumeClient", "VolumeProtocol", "JSONValue", "Ceph", "POSIXSupport", "DevCluster",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Histogram", package: "hdrhistogram-swift"),
            ]
        ),

        .target(name: "TestSupport", dependencies: ["Ceph", "JSONValue", "POSIXSupport", "DevCluster"], path: "Tests/TestSupport"),
        .testTarget(name: "JSONValueTests", dependencies: ["JSONValue"]),
        .testTarget(name: "CephTests", dependencies: ["Ceph", "TestSupport"]),
        .testTarget(name: "VolumeProtocolTests", dependencies: ["VolumeProtocol", "JSONValue"]),
        .testTarget(
            name: "RPCServerTests",
            dependencies: [
                "RPCServer", "WorkerThreads", "VolumeProtocol", "JSONValue", "TestSupport",
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .testTarget(
            name: "VolumeClientTests", dependencies: ["VolumeClient", "VolumeProtocol", "JSONValue", "TestSupport", "POSIXSupport"]),
        .testTarget(name: "VolumeEngineTests", dependencies: ["VolumeEngine", "WorkerThreads", "Ceph", "JSONValue", "TestSupport"]),
        .testTarget(
            name: "FaultTests",
            dependencies: ["VolumeClient", "VolumeProtocol", "JSONValue", "TestSupport", "Ceph", "cephfs-volumed", "rpc-cli"]),
        .testTarget(
            name: "EndToEndTests",
            dependencies: [
                "VolumeClient", "VolumeProtocol", "RPCServer", "VolumeService", "VolumeEngine", "TestSupport", "JSONValue", "POSIXSupport",
                "cephfs-volumed", "rpc-cli", .product(name: "Logging", package: "swift-log"),
            ]
        ),
    ],
    swiftLanguageModes: [.v6]
)
