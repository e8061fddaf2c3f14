//! Points on the globe, the distance between them, and the position reports of drivers.

use serde::{Deserialize, Serialize};

use super::MobilityError;

/// Mean Earth radius (IUGG), in metres: the sphere great-circle distances are measured on.
pub const EARTH_RADIUS_M: f64 = 6_371_008.8;

/// Pickup and dropoff closer than this, in metres, are the same place.
pub const SAME_PLACE_M: f64 = 10.0;

/// Fastest speed a position report may give, in metres per second (360 km/h).
pub const SPEED_MAX_MPS: f64 = 100.0;

/// A point on the globe, in decimal degrees (WGS 84).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Point {
    /// Latitude, within [-90, 90].
    pub lat: f64,
    /// Longitude, within [-180, 180].
    pub lon: f64,
}

impl Point {
    /// A checked point: both numbers finite, the latitude within [-90, 90] and the longitude
    /// within [-180, 180]; otherwise `invalid_coordinates` naming `{name}.lat` or `{name}.lon`.
    pub fn new(lat: f64, lon: f64, name: &str) -> Result<Point, MobilityError> {
        let field = |part: &str| MobilityError::InvalidCoordinates {
            field: if name.is_empty() { part.to_string() } else { format!("{name}.{part}") },
        };
        if !(lat.is_finite() && (-90.0..=90.0).contains(&lat)) {
            return Err(field("lat"));
        }
        if !(lon.is_finite() && (-180.0..=180.0).contains(&lon)) {
            return Err(field("lon"));
        }
        Ok(Point { lat, lon })
    }

    /// This point checked again (it may have been read from JSON without [`Point::new`]).
    pub fn check(self, name: &str) -> Result<Point, MobilityError> {
        Point::new(self.lat, self.lon, name)
    }

    /// Great-circle distance in metres (haversine formula on a sphere of [`EARTH_RADIUS_M`]).
    pub fn distance_m(self, other: Point) -> f64 {
        let (phi1, phi2) = (self.lat.to_radians(), other.lat.to_radians());
        let d_phi = phi2 - phi1;
        let d_lambda = (other.lon - self.lon).to_radians();
        let a = (d_phi / 2.0).sin().powi(2) + phi1.cos() * phi2.cos() * (d_lambda / 2.0).sin().powi(2);
        // Rounding can push `a` a hair above 1 for antipodes.
        2.0 * EARTH_RADIUS_M * a.sqrt().min(1.0).asin()
    }
}

/// Whether a trip goes somewhere: pickup and dropoff at least [`SAME_PLACE_M`] apart.
pub fn check_trip(pickup: Point, dropoff: Point) -> Result<(), MobilityError> {
    if pickup.distance_m(dropoff) < SAME_PLACE_M {
        Err(MobilityError::SamePlace)
    } else {
        Ok(())
    }
}

/// A driver's position report.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Fix {
    /// Where the driver is.
    pub point: Point,
    /// Direction of travel in degrees clockwise from north, within [0, 360), when known.
    pub heading: Option<f64>,
    /// Speed in metres per second, within [0, 100], when known.
    pub speed_mps: Option<f64>,
}

impl Fix {
    /// A checked report: the point valid (named `location`), the heading within [0, 360) and the
    /// speed within [0, [`SPEED_MAX_MPS`]], both finite; otherwise `invalid_coordinates` or
    /// `invalid_parameter` naming `heading` or `speed` (the request's names).
    pub fn new(point: Point, heading: Option<f64>, speed_mps: Option<f64>) -> Result<Fix, MobilityError> {
        let point = point.check("location")?;
        if heading.is_some_and(|h| !(h.is_finite() && (0.0..360.0).contains(&h))) {
            return Err(MobilityError::InvalidLocation { field: "heading".into() });
        }
        if speed_mps.is_some_and(|s| !(s.is_finite() && (0.0..=SPEED_MAX_MPS).contains(&s))) {
            return Err(MobilityError::InvalidLocation { field: "speed".into() });
        }
        Ok(Fix { point, heading, speed_mps })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(lat: f64, lon: f64) -> Point {
        Point::new(lat, lon, "p").unwrap()
    }

    fn field_of(result: Result<Point, MobilityError>) -> String {
        match result {
            Err(MobilityError::InvalidCoordinates { field }) => field,
            other => panic!("expected invalid coordinates, got {other:?}"),
        }
    }

    #[test]
    fn coordinates_on_the_edges_of_the_globe_are_accepted() {
        for (lat, lon) in [(90.0, 180.0), (-90.0, -180.0), (0.0, 0.0), (48.8566, 2.3522), (-0.0, -0.0)] {
            assert_eq!(Point::new(lat, lon, "pickup"), Ok(Point { lat, lon }), "{lat},{lon}");
        }
    }

    #[test]
    fn coordinates_off_the_globe_or_not_finite_name_the_field_at_fault() {
        let cases = [
            (90.000_001, 0.0, "pickup.lat"),
            (-90.5, 0.0, "pickup.lat"),
            (f64::NAN, 0.0, "pickup.lat"),
            (f64::INFINITY, 0.0, "pickup.lat"),
            (0.0, 180.000_001, "pickup.lon"),
            (0.0, -181.0, "pickup.lon"),
            (0.0, f64::NAN, "pickup.lon"),
            (0.0, f64::NEG_INFINITY, "pickup.lon"),
        ];
        for (lat, lon, field) in cases {
            assert_eq!(field_of(Point::new(lat, lon, "pickup")), field, "{lat},{lon}");
        }
        // Both wrong: the latitude is named first.
        assert_eq!(field_of(Point::new(f64::NAN, 999.0, "dropoff")), "dropoff.lat");
        assert_eq!(field_of(Point::new(0.0, 999.0, "")), "lon");
        assert_eq!(field_of(Point { lat: 95.0, lon: 0.0 }.check("near")), "near.lat");
    }

    #[test]
    fn distances_follow_the_great_circle() {
        assert_eq!(p(10.0, 20.0).distance_m(p(10.0, 20.0)), 0.0);
        // One degree of latitude (or of longitude on the equator) is 2πR / 360.
        let degree = 2.0 * std::f64::consts::PI * EARTH_RADIUS_M / 360.0;
        assert!((p(0.0, 0.0).distance_m(p(1.0, 0.0)) - degree).abs() < 1e-6);
        assert!((p(0.0, 0.0).distance_m(p(0.0, 1.0)) - degree).abs() < 1e-6);
        // Antipodes are half the circumference apart, across the date line as well.
        let half = std::f64::consts::PI * EARTH_RADIUS_M;
        assert!((p(0.0, 0.0).distance_m(p(0.0, 180.0)) - half).abs() < 1e-3);
        assert!((p(90.0, 0.0).distance_m(p(-90.0, 0.0)) - half).abs() < 1e-3);
        assert!(p(0.0, 179.9).distance_m(p(0.0, -179.9)) < 23_000.0);
        // Paris (Notre-Dame) to London (Charing Cross): about 343.5 km.
        let d = p(48.853, 2.3499).distance_m(p(51.5074, -0.1278));
        assert!((d - 343_500.0).abs() < 1_500.0, "{d}");
        // Symmetric.
        assert_eq!(p(48.853, 2.3499).distance_m(p(51.5074, -0.1278)), d);
    }

    #[test]
    fn a_trip_to_the_same_place_is_refused() {
        let pickup = p(48.8566, 2.3522);
        assert_eq!(check_trip(pickup, pickup), Err(MobilityError::SamePlace));
        // About 5.6 m north: still the same place.
        assert_eq!(check_trip(pickup, p(48.856_65, 2.3522)), Err(MobilityError::SamePlace));
        // About 11 m north: a trip.
        assert_eq!(check_trip(pickup, p(48.8567, 2.3522)), Ok(()));
    }

    #[test]
    fn a_position_report_keeps_heading_and_speed_in_range() {
        let at = p(1.0, 2.0);
        assert!(Fix::new(at, None, None).is_ok());
        assert!(Fix::new(at, Some(0.0), Some(0.0)).is_ok());
        assert!(Fix::new(at, Some(359.99), Some(SPEED_MAX_MPS)).is_ok());
        let heading = Err(MobilityError::InvalidLocation { field: "heading".into() });
        for h in [360.0, -0.1, f64::NAN, f64::INFINITY] {
            assert_eq!(Fix::new(at, Some(h), None), heading, "{h}");
        }
        let speed = Err(MobilityError::InvalidLocation { field: "speed".into() });
        for s in [100.01, -1.0, f64::NAN, f64::INFINITY] {
            assert_eq!(Fix::new(at, Some(90.0), Some(s)), speed, "{s}");
        }
        let off = Point { lat: 0.0, lon: 200.0 };
        assert_eq!(Fix::new(off, None, None), Err(MobilityError::InvalidCoordinates { field: "location.lon".into() }));
    }
}
