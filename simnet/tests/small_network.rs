//! Small versions of the simulator's scenarios, as tests: about 50 real nodes.

use seedbank_simnet::{churn, discovery};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_nodes_find_what_is_announced() {
    let report = discovery::run(discovery::DiscoveryConfig {
        nodes: 50,
        artifacts: 20,
        lookups_per_node: 2,
        seed: 11,
        join_batch: 25,
    })
    .await
    .expect("scenario runs");
    assert!(report.lookups >= 80, "{report:?}");
    assert!(
        report.success_rate >= 0.99,
        "lookup success {:.3} below 99%: {report:?}",
        report.success_rate
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn artifacts_stay_findable_under_churn() {
    let report = churn::run(churn::ChurnConfig {
        nodes: 40,
        artifacts: 20,
        replicas: 3,
        churn_per_hour: 0.10,
        round_minutes: 30.0,
        rounds: 4,
        seed: 5,
    })
    .await
    .expect("scenario runs");
    let last = report.rounds.last().expect("rounds ran");
    assert!(last.replaced >= 8, "{report:?}");
    // Every artifact that still has a holder up must be found.
    for round in &report.rounds {
        assert_eq!(round.retrievable, round.with_live_holder, "{report:?}");
    }
}
