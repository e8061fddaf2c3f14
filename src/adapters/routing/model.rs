//! The great-circle model of a route: the distance along the Earth's surface between successive
//! points, lengthened by a detour factor (roads are not straight), travelled at an average speed
//! per profile. It is what the simulator answers and what the fallback answers, both marked
//! `estimated`.

use super::{Point, Profile};

/// Mean Earth radius (IUGG), metres.
const EARTH_RADIUS_M: f64 = 6_371_008.8;

/// Name of the model in provenance records.
pub const MODEL: &str = "great-circle";

/// Great-circle distance between two points (haversine), metres.
pub fn great_circle_m(a: Point, b: Point) -> f64 {
    let (lat1, lat2) = (a.lat.to_radians(), b.lat.to_radians());
    let dlat = lat2 - lat1;
    let dlon = (b.lon - a.lon).to_radians();
    let h = (dlat / 2.0).sin().powi(2) + lat1.cos() * lat2.cos() * (dlon / 2.0).sin().powi(2);
    2.0 * EARTH_RADIUS_M * h.sqrt().min(1.0).asin()
}

/// How much longer than the straight line a trip is, and how fast it goes on average.
fn profile_model(profile: Profile) -> (f64, f64) {
    // (detour factor, average speed in m/s): urban road networks run 1.2 to 1.4 times the
    // straight line; speeds are urban averages.
    match profile {
        Profile::Driving => (1.3, 30.0 / 3.6),
        Profile::Cycling => (1.25, 15.0 / 3.6),
        Profile::Walking => (1.2, 5.0 / 3.6),
    }
}

/// The estimated (distance metres, duration seconds) through `points` in order.
pub fn estimate(profile: Profile, points: &[Point]) -> (f64, f64) {
    let straight: f64 = points.windows(2).map(|w| great_circle_m(w[0], w[1])).sum();
    let (detour, speed) = profile_model(profile);
    let distance = straight * detour;
    (distance, distance / speed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paris_to_london_is_about_344_km_as_the_crow_flies() {
        let paris = Point { lat: 48.8566, lon: 2.3522 };
        let london = Point { lat: 51.5074, lon: -0.1278 };
        let d = great_circle_m(paris, london);
        assert!((d - 343_500.0).abs() < 1_500.0, "{d}");
    }

    #[test]
    fn estimates_lengthen_the_line_and_use_the_profile_speed() {
        let a = Point { lat: 0.0, lon: 0.0 };
        let b = Point { lat: 0.0, lon: 0.1 };
        let c = Point { lat: 0.0, lon: 0.2 };
        let (d1, t1) = estimate(Profile::Driving, &[a, c]);
        let (d2, _) = estimate(Profile::Driving, &[a, b, c]);
        assert!((d1 - d2).abs() < 1e-6, "waypoints on the line add nothing");
        assert!((d1 / great_circle_m(a, c) - 1.3).abs() < 1e-9);
        let (_, walk) = estimate(Profile::Walking, &[a, c]);
        assert!(walk > t1 * 5.0, "walking is slower than driving");
    }
}
